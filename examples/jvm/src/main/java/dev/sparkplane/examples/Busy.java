package dev.sparkplane.examples;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * Keeps a cluster busy: one job of TASKS tasks that each sleep SECONDS seconds, to load a cluster
 * for autoscaling and cancel tests.
 *
 * <pre>Busy TASKS SECONDS [PARTITIONS]</pre>
 *
 * SECONDS may have a fraction (0.5). PARTITIONS, TASKS unless given, is the number of Spark tasks
 * the job runs: with fewer partitions than TASKS, each Spark task sleeps for several of them in a row.
 */
public final class Busy {
  private Busy() {}

  public static void main(String[] args) {
    if (args.length < 2 || args.length > 3) {
      throw new IllegalArgumentException(
          "usage: Busy TASKS SECONDS [PARTITIONS] (got " + args.length + " arguments)");
    }
    int tasks = positive("TASKS", args[0]);
    long millis = millis(args[1]);
    int partitions = args.length == 3 ? positive("PARTITIONS", args[2]) : tasks;

    JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("Busy"));
    try {
      List<Integer> ids = new ArrayList<>();
      for (int i = 0; i < tasks; i++) {
        ids.add(i);
      }
      sc.setJobDescription("Busy: " + tasks + " tasks of " + args[1] + "s");
      sc.parallelize(ids, partitions).foreach(i -> Thread.sleep(millis));
      System.out.println("Busy: " + tasks + " tasks of " + args[1] + "s done");
    } finally {
      sc.stop();
    }
  }

  private static long millis(String seconds) {
    double s;
    try {
      s = Double.parseDouble(seconds);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("SECONDS must be a number, got " + seconds, e);
    }
    if (!(s >= 0 && s < 1e9)) {
      throw new IllegalArgumentException("SECONDS must be 0 or more, got " + seconds);
    }
    return Math.round(s * 1000);
  }

  private static int positive(String name, String arg) {
    int n;
    try {
      n = Integer.parseInt(arg);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " must be a whole number, got " + arg, e);
    }
    if (n < 1) {
      throw new IllegalArgumentException(name + " must be at least 1, got " + arg);
    }
    return n;
  }
}
