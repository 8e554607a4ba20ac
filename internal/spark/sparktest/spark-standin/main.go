// Command spark-standin is the test stand-in for Apache Spark's launch scripts. Tests build it
// and point a fake SPARK_HOME's bin/spark-class and bin/spark-submit at it.
package main

import (
	"os"

	"github.com/sparkplane/sparkplane/internal/spark/sparktest/standin"
)

func main() { os.Exit(standin.Main(os.Args[1:])) }
