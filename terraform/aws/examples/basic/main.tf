# A cluster of three spot workers over three zones, from this module alone. The cluster secret
# must be in SSM before the nodes boot (sparkplane does this for you):
#
#   aws ssm put-parameter --type SecureString --name /sparkplane/analytics/secret \
#     --value "$(openssl rand -hex 32)"
#
# and the nodes read the sparkplane binary and Spark from the bucket: see the module's README.

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
  region = "eu-west-1"
}

module "spark" {
  source = "../.."

  name                  = "analytics"
  zones                 = 3
  allowed_cidrs         = ["203.0.113.0/24"]
  worker_instance_types = ["m5.xlarge", "m5a.xlarge", "m6i.xlarge"]
  spot                  = true
  workers_desired       = 3
  workers_max           = 20
  autoscale_policy      = "spark"
}

output "agent_url" {
  value = module.spark.agent_url
}

output "bucket" {
  value = module.spark.bucket
}
