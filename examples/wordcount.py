"""Count words in a text file and print the most common ones.

    sparkplane submit -n laptop examples/wordcount.py -- /path/to/text.txt
"""
import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: wordcount.py <file>", file=sys.stderr)
        sys.exit(2)
    spark = SparkSession.builder.appName("PythonWordCount").getOrCreate()
    lines = spark.read.text(sys.argv[1]).rdd.map(lambda r: r[0])
    counts = lines.flatMap(lambda l: l.split()).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
    for word, count in counts.takeOrdered(20, key=lambda wc: -wc[1]):
        print("%s\t%d" % (word, count))
    spark.stop()
