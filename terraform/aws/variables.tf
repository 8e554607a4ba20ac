# ---------------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------------

variable "name" {
  description = "Name of the cluster. It names and tags every resource, and must be unique in the account and region."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Extra tags for every resource. sparkplane/cluster and sparkplane/role are always set."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "An existing VPC to use. When null, the module creates a VPC with one public subnet per zone."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Existing subnets to use, with vpc_id. Workers are spread over them; the master goes in the first."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.subnet_ids) <= 16
    error_message = "subnet_ids takes at most 16 subnets."
  }
}

variable "zones" {
  description = "Number of availability zones the created VPC spans, one subnet each (when vpc_id is null)."
  type        = number
  default     = 1

  validation {
    condition     = var.zones >= 1 && var.zones <= 6 && floor(var.zones) == var.zones
    error_message = "zones must be a whole number from 1 to 6."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the created VPC (when vpc_id is null)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger, e.g. 10.42.0.0/16."
  }
}

variable "allowed_cidrs" {
  description = "Networks allowed to reach the agent API (TLS, agent_port) and, with ssh_key_name, SSH. Spark's own ports are never opened beyond the cluster."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_cidrs must list at least one CIDR block, e.g. [\"203.0.113.0/24\"]."
  }
}

variable "agent_port" {
  description = "TCP port of the sparkplane agent's API (TLS) on every node."
  type        = number
  default     = 7443

  validation {
    condition     = var.agent_port > 1024 && var.agent_port < 65536
    error_message = "agent_port must be between 1025 and 65535."
  }
}

variable "ssh_key_name" {
  description = "EC2 key pair for SSH to the nodes. When null, port 22 stays closed."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------------
# Machines
# ---------------------------------------------------------------------------------------------------

variable "architecture" {
  description = "CPU architecture of every node: x86_64 or arm64. The instance types must match it."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "ami_id" {
  description = "AMI of every node. When null, the latest Amazon Linux 2023 for the architecture (from SSM's public parameters)."
  type        = string
  default     = null
}

variable "master_instance_type" {
  description = "Instance type of the master (always on-demand)."
  type        = string
  default     = "m5.large"
}

variable "root_volume_gib" {
  description = "Size of every node's root volume (gp3, encrypted)."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_gib >= 8 && var.root_volume_gib <= 16384
    error_message = "root_volume_gib must be between 8 and 16384."
  }
}

variable "master_data_volume_gib" {
  description = "Size of an extra data volume (gp3, encrypted) on the master; 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.master_data_volume_gib >= 0 && var.master_data_volume_gib <= 16384
    error_message = "master_data_volume_gib must be between 0 and 16384."
  }
}

variable "worker_data_volume_gib" {
  description = "Size of an extra data volume (gp3, encrypted) on every worker, for shuffle and spill; 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_data_volume_gib >= 0 && var.worker_data_volume_gib <= 16384
    error_message = "worker_data_volume_gib must be between 0 and 16384."
  }
}

variable "worker_instance_types" {
  description = "Instance types of the workers, in order of preference. With spot, several similar types let capacity-optimized allocation find capacity."
  type        = list(string)
  default     = ["m5.xlarge"]

  validation {
    condition     = length(var.worker_instance_types) >= 1 && length(var.worker_instance_types) <= 20
    error_message = "worker_instance_types must list 1 to 20 instance types."
  }
}

variable "workers_min" {
  description = "Fewest workers (the autoscaling group's min_size)."
  type        = number
  default     = 0

  validation {
    condition     = var.workers_min >= 0
    error_message = "workers_min must not be negative."
  }
}

variable "workers_max" {
  description = "Most workers (the autoscaling group's max_size)."
  type        = number
  default     = 10

  validation {
    condition     = var.workers_max >= 1 && var.workers_max <= 1000
    error_message = "workers_max must be between 1 and 1000."
  }
}

variable "workers_desired" {
  description = "Workers at creation. Later changes come from sparkplane (add, remove, the autoscaler) and are not reverted by Terraform."
  type        = number
  default     = 2

  validation {
    condition     = var.workers_desired >= 0
    error_message = "workers_desired must not be negative."
  }
}

variable "spot" {
  description = "Run workers on spot capacity (above on_demand_base)."
  type        = bool
  default     = false
}

variable "on_demand_base" {
  description = "Workers kept on on-demand capacity even with spot, for drivers (cluster deploy mode)."
  type        = number
  default     = 1

  validation {
    condition     = var.on_demand_base >= 0
    error_message = "on_demand_base must not be negative."
  }
}

variable "spot_allocation_strategy" {
  description = "How the group picks spot pools."
  type        = string
  default     = "capacity-optimized"

  validation {
    condition     = contains(["capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized", "lowest-price"], var.spot_allocation_strategy)
    error_message = "spot_allocation_strategy must be capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized or lowest-price."
  }
}

variable "capacity_rebalance" {
  description = "Let the group launch a replacement when a spot instance gets a rebalance recommendation."
  type        = bool
  default     = true
}

variable "decommission_timeout" {
  description = "Seconds a terminating worker may take to decommission its Spark worker (the termination lifecycle hook's heartbeat timeout)."
  type        = number
  default     = 600

  validation {
    condition     = var.decommission_timeout >= 30 && var.decommission_timeout <= 7200
    error_message = "decommission_timeout must be between 30 and 7200 seconds."
  }
}

variable "gateway" {
  description = "Add a gateway instance inside the cluster's network, for client-mode work (seed 000's spark-gateway)."
  type        = bool
  default     = false
}

variable "gateway_instance_type" {
  description = "Instance type of the gateway."
  type        = string
  default     = "m5.large"
}

variable "prometheus" {
  description = "Add a monitoring instance running Prometheus, which finds the agents by the cluster's tag (EC2 discovery) and scrapes them and Spark. Its port 9090 is open to allowed_cidrs only."
  type        = bool
  default     = false
}

variable "grafana" {
  description = "Also run Grafana on the monitoring instance (port 3000, allowed_cidrs only), provisioned with sparkplane's dashboards. Needs prometheus."
  type        = bool
  default     = false

  validation {
    condition     = !var.grafana || var.prometheus
    error_message = "grafana needs prometheus = true: the dashboards read it."
  }
}

variable "monitoring_instance_type" {
  description = "Instance type of the monitoring instance."
  type        = string
  default     = "t3.medium"
}

variable "prometheus_version" {
  description = "Prometheus release the monitoring instance downloads from GitHub (the monitoring instance is the one node that fetches software from outside the cluster's bucket)."
  type        = string
  default     = "2.53.3"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.prometheus_version))
    error_message = "prometheus_version must look like 2.53.3."
  }
}

variable "prometheus_sha256" {
  description = "SHA-256 of the Prometheus release tarball by architecture (amd64, arm64), pinned by you. The download is always checked against the release's sha256sums.txt; a pinned sum also guards against a release that changed."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.prometheus_sha256 : contains(["amd64", "arm64"], k) && can(regex("^[0-9a-f]{64}$", v))])
    error_message = "prometheus_sha256 maps amd64 and arm64 to 64 lower-case hex digits."
  }
}

# ---------------------------------------------------------------------------------------------------
# Storage, secrets and software
# ---------------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "An existing S3 bucket for the cluster's artifacts, job code and Spark event logs. When null, the module creates one (public access blocked, encrypted), emptied and removed with the cluster."
  type        = string
  default     = null
}

variable "s3_prefix" {
  description = "Key prefix of the cluster's objects in the bucket. When null: clusters/<name>/."
  type        = string
  default     = null

  validation {
    condition     = var.s3_prefix == null || can(regex("^[^/].*/$", var.s3_prefix))
    error_message = "s3_prefix must not start with '/' and must end with '/', e.g. clusters/etl/."
  }
}

variable "parameter_path" {
  description = "SSM path of the cluster's secrets: <path>secret (the cluster token and Spark's shared secret) and <path>tls-key (the agent API's TLS key), both SecureString. The module does not create them (a secret never enters Terraform state): sparkplane puts them there, or you do, with aws ssm put-parameter --type SecureString. When null: /sparkplane/<name>/."
  type        = string
  default     = null

  validation {
    condition     = var.parameter_path == null || can(regex("^/[A-Za-z0-9_.\\-/]+/$", var.parameter_path))
    error_message = "parameter_path must start and end with '/', e.g. /sparkplane/etl/."
  }
}

variable "spark_version" {
  description = "Spark release the nodes run. Its tarball is read from <prefix>spark/spark-<version>-bin-hadoop3.tgz in the bucket, so that nodes never depend on Apache's mirrors."
  type        = string
  default     = "4.3.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.spark_version))
    error_message = "spark_version must look like 3.5.3."
  }
}

# ---------------------------------------------------------------------------------------------------
# Scaling on CPU (seed 001)
# ---------------------------------------------------------------------------------------------------

variable "autoscale_policy" {
  description = "off, spark or cpu. spark: sparkplane's agent scales the group on Spark's own signals. cpu: CloudWatch alarms on the group's average CPU scale it, as seed 001 did."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "spark", "cpu"], var.autoscale_policy)
    error_message = "autoscale_policy must be off, spark or cpu."
  }
}

variable "cpu_high_percent" {
  description = "cpu policy: scale out above this average CPU utilisation."
  type        = number
  default     = 85
}

variable "cpu_low_percent" {
  description = "cpu policy: scale in below this average CPU utilisation."
  type        = number
  default     = 20

  validation {
    condition     = var.cpu_low_percent >= 0 && var.cpu_low_percent < 100
    error_message = "cpu_low_percent must be between 0 and 100."
  }
}

variable "cpu_step" {
  description = "cpu policy: workers added or removed per alarm."
  type        = number
  default     = 2

  validation {
    condition     = var.cpu_step >= 1
    error_message = "cpu_step must be at least 1."
  }
}

variable "cpu_period_seconds" {
  description = "cpu policy: length of one evaluation period of the alarms."
  type        = number
  default     = 120

  validation {
    condition     = var.cpu_period_seconds >= 60 && var.cpu_period_seconds % 60 == 0
    error_message = "cpu_period_seconds must be a multiple of 60."
  }
}

variable "cpu_evaluation_periods" {
  description = "cpu policy: periods in a row the threshold must be crossed."
  type        = number
  default     = 2

  validation {
    condition     = var.cpu_evaluation_periods >= 1
    error_message = "cpu_evaluation_periods must be at least 1."
  }
}

variable "cpu_cooldown_seconds" {
  description = "cpu policy: seconds after a scaling action before the next."
  type        = number
  default     = 300

  validation {
    condition     = var.cpu_cooldown_seconds >= 0
    error_message = "cpu_cooldown_seconds must not be negative."
  }
}
