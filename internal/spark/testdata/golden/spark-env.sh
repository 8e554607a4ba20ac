# Written by sparkplane. Sourced by Spark's launch scripts.
export JAVA_HOME=/usr/lib/jvm/java-17
export SPARK_CONF_DIR=/n/conf
export SPARK_DIST_CLASSPATH='/n/s3a/*'
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_LOG_DIR=/n/logs
export SPARK_PID_DIR=/n/logs
export SPARK_WORKER_DIR='/n/work dir'
