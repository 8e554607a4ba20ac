terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region                      = "eu-west-1"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    autoscaling = "http://127.0.0.1:MOTO"
    cloudwatch  = "http://127.0.0.1:MOTO"
    ec2         = "http://127.0.0.1:MOTO"
    iam         = "http://127.0.0.1:MOTO"
    route53     = "http://127.0.0.1:MOTO"
    s3          = "http://127.0.0.1:MOTO"
    ssm         = "http://127.0.0.1:MOTO"
    sts         = "http://127.0.0.1:MOTO"
  }
  default_tags {
    tags = {
      "sparkplane/cluster" = "analytics"
    }
  }
}

module "cluster" {
  source = "./modules/sparkplane-aws"

  agent_port             = 7443
  allowed_cidrs          = ["203.0.113.0/24"]
  architecture           = "x86_64"
  autoscale_policy       = "spark"
  bucket_name            = "analytics-data"
  gateway                = true
  grafana                = true
  master_data_volume_gib = 0
  master_instance_type   = "m5.large"
  name                   = "analytics"
  on_demand_base         = 1
  parameter_path         = "/sparkplane/analytics/"
  prometheus             = true
  s3_prefix              = "clusters/analytics/"
  spark_version          = "4.3.0"
  spot                   = true
  tags = {
    "sparkplane/managed-by" = "sparkplane"
  }
  worker_data_volume_gib = 100
  worker_instance_types  = ["m5.xlarge", "m5a.xlarge", "m6i.xlarge"]
  workers_desired        = 3
  workers_max            = 20
  workers_min            = 1
  zones                  = 3
}
