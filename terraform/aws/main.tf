# A Spark standalone cluster on EC2, run by sparkplane's agent on every node: one on-demand
# master, workers in an autoscaling group (spot or on-demand, several instance types), a private
# DNS name for the master, an S3 prefix for artifacts and event logs, and an instance role that
# can touch only this cluster's objects, parameters and group.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  count = var.vpc_id == null ? 1 : 0
  state = "available"
}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}"
}

data "aws_ami" "node" {
  most_recent = true

  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

locals {
  prefix         = coalesce(var.s3_prefix, "clusters/${var.name}/")
  parameter_path = coalesce(var.parameter_path, "/sparkplane/${var.name}/")
  ami_id         = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ami[0].insecure_value
  binary_arch    = var.architecture == "arm64" ? "arm64" : "amd64"

  create_vpc = var.vpc_id == null
  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  subnet_ids = local.create_vpc ? aws_subnet.public[*].id : var.subnet_ids

  create_bucket = var.bucket_name == null
  bucket        = local.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name

  zone_name  = "${var.name}.sparkplane.internal"
  master_dns = "master.${local.zone_name}"

  tags = merge(var.tags, { "sparkplane/cluster" = var.name })

  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  user_data = { for role in ["master", "worker", "gateway", "monitoring"] : role => templatefile("${path.module}/templates/user-data.sh.tftpl", {
    name           = var.name
    role           = role
    region         = local.region
    bucket         = local.bucket
    prefix         = local.prefix
    parameter_path = local.parameter_path
    master_dns     = local.master_dns
    agent_port     = var.agent_port
    spark_version  = var.spark_version
    arch           = local.binary_arch
    prometheus     = var.prometheus_version
    prom_sums      = var.prometheus_sha256
    grafana        = var.grafana
  }) }
}
