package dev.sparkplane.examples;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Locale;
import java.util.regex.Pattern;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

/**
 * Counts the words of text files.
 *
 * <pre>WordCount INPUT OUTPUT</pre>
 *
 * INPUT is any path Spark reads text from (file:, s3a:, a directory, a glob). A word is a run of
 * letters, lower-cased. OUTPUT becomes a directory with one part file of lines "word TAB count",
 * the most frequent word first (ties in word order).
 */
public final class WordCount {
  private static final Pattern NON_LETTERS = Pattern.compile("\\P{L}+");

  /** A word and its count, ordered by count descending, then by word. */
  static final class Entry implements Comparable<Entry>, Serializable {
    private static final long serialVersionUID = 1L;
    final String word;
    final long count;

    Entry(String word, long count) {
      this.word = word;
      this.count = count;
    }

    @Override
    public int compareTo(Entry o) {
      int c = Long.compare(o.count, count);
      return c != 0 ? c : word.compareTo(o.word);
    }

    @Override
    public String toString() {
      return word + "\t" + count;
    }
  }

  private WordCount() {}

  public static void main(String[] args) {
    if (args.length != 2) {
      throw new IllegalArgumentException(
          "usage: WordCount INPUT OUTPUT (got " + args.length + " arguments)");
    }
    String input = args[0];
    String output = args[1];
    JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("WordCount"));
    try {
      JavaRDD<Entry> counts =
          sc.textFile(input)
              .flatMap(line -> Arrays.asList(NON_LETTERS.split(line.toLowerCase(Locale.ROOT))).iterator())
              .filter(word -> !word.isEmpty())
              .mapToPair(word -> new Tuple2<>(word, 1L))
              .reduceByKey(Long::sum)
              .map(wc -> new Entry(wc._1(), wc._2()))
              .sortBy(e -> e, true, 1) // one partition: one part file, in order
              .cache();
      counts.saveAsTextFile(output);
      long distinct = counts.count();
      long total = counts.map(e -> e.count).fold(0L, Long::sum);
      System.out.println(
          "WordCount: " + distinct + " distinct words, " + total + " words, written to " + output);
    } finally {
      sc.stop();
    }
  }
}
