"""Estimate pi by throwing darts, the classic first Spark job.

    sparkplane run -f examples/throwaway.yaml examples/pi.py -- 20
"""
import random
import sys
from operator import add

from pyspark.sql import SparkSession


def inside(_: int) -> int:
    x, y = random.random() * 2 - 1, random.random() * 2 - 1
    return 1 if x * x + y * y <= 1 else 0


if __name__ == "__main__":
    partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    n = 100000 * partitions
    spark = SparkSession.builder.appName("PythonPi").getOrCreate()
    count = spark.sparkContext.parallelize(range(1, n + 1), partitions).map(inside).reduce(add)
    print("Pi is roughly %f" % (4.0 * count / n))
    spark.stop()
