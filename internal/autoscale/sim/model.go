// Package sim is a discrete-event model of a Spark standalone cluster that replays a trace of
// job arrivals under an autoscaling policy, to compare policies by cost and by job completion
// time. It drives the same autoscale.Controller as the master's agent.
package sim

import "time"

// Model is every number the simulation rests on, in one place. Each says where it comes from;
// docs/autoscaling.md repeats them.
type Model struct {
	// Tasks from bytes. SplitBytes: one map task per 128 MiB of input, Spark's
	// spark.sql.files.maxPartitionBytes default and the HDFS block size. ReducerBytes: one reduce
	// task per 64 MiB of shuffle, Spark's spark.sql.adaptive.advisoryPartitionSizeInBytes default.
	SplitBytes   int64
	ReducerBytes int64
	// CoreRate is the bytes a core reads and processes per second. 64 MiB/s is an assumption in
	// the middle of what simple Spark ETL achieves per core on cloud instances (tens to low
	// hundreds of MB/s); the benchmark also runs at half and double it.
	CoreRate float64
	// TaskOverhead is the fixed cost of a task beyond its bytes: scheduling, deserialisation,
	// JVM warm-up on short tasks. 100 ms.
	TaskOverhead time.Duration
	// JobOverhead is a driver's start-up (JVM, SparkContext, executor allocation). 5 s. Drivers
	// run in client mode on the master, so it delays the job without taking worker cores.
	JobOverhead time.Duration
	// LaunchLatency is from asking for a worker to Spark registering it: EC2 start (tens of
	// seconds), boot, cloud-init fetching sparkplane and Spark from S3, the JVM starting. Drawn
	// uniformly from LaunchMin to LaunchMax: 60 s to 150 s.
	LaunchMin, LaunchMax time.Duration
	// ExecutorIdleTimeout is how long an executor stays on a worker without tasks before dynamic
	// allocation releases it: Spark's spark.dynamicAllocation.executorIdleTimeout default, 60 s.
	ExecutorIdleTimeout time.Duration
	// InterruptRate is spot interruptions per spot instance-hour. 0.5% (≈ 3.6 a month per
	// instance) is well above the AWS Spot Instance Advisor's worst bucket (">20%" of instances
	// interrupted a month), so that the benchmark exercises interruptions.
	InterruptRate float64
	// InterruptNotice is EC2's two-minute spot interruption notice.
	InterruptNotice time.Duration
	// CapacityErrorRate is the chance that a spot launch fails for lack of capacity. 2%.
	CapacityErrorRate float64
	// BillingMinimum is EC2's per-second billing minimum for Linux instances: 60 s.
	BillingMinimum time.Duration
	// DecisionInterval is how often the autoscaler decides (the agent's poll). 10 s.
	DecisionInterval time.Duration
	// SeriesInterval is how often the time series for the chart is sampled. 60 s.
	SeriesInterval time.Duration
	// BoundedSlowdownFloor is the run time below which jobs count as this long in bounded
	// slowdown: (wait + run) / max(run alone, floor). 10 s, the usual value for batch jobs.
	BoundedSlowdownFloor time.Duration
	// AppCores caps the cores one application may hold (spark.deploy.defaultCores for
	// applications that do not set spark.cores.max); 0 is Spark's default, no cap.
	AppCores int
	// Seed makes a run repeatable.
	Seed uint64
}

// DefaultModel is the model the benchmark reports.
func DefaultModel() Model {
	return Model{
		SplitBytes:           128 << 20,
		ReducerBytes:         64 << 20,
		CoreRate:             64 << 20,
		TaskOverhead:         100 * time.Millisecond,
		JobOverhead:          5 * time.Second,
		LaunchMin:            60 * time.Second,
		LaunchMax:            150 * time.Second,
		ExecutorIdleTimeout:  60 * time.Second,
		InterruptRate:        0.005,
		InterruptNotice:      2 * time.Minute,
		CapacityErrorRate:    0.02,
		BillingMinimum:       60 * time.Second,
		DecisionInterval:     10 * time.Second,
		SeriesInterval:       60 * time.Second,
		BoundedSlowdownFloor: 10 * time.Second,
		Seed:                 1,
	}
}
