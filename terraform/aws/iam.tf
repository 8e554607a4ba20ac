# Two roles, least privilege. The nodes' role (master, gateway, monitoring): the cluster's own S3
# prefix, its own SSM parameters, describe calls (which IAM cannot narrow), and capacity changes
# and terminations in its own group only (by tag: the group's ARN is not known before it exists,
# and it needs this role). The workers' role, for the machines where job code runs: it reads the
# prefix, writes event logs only, reads the parameters, and completes its own lifecycle action;
# it cannot resize the group, terminate or stop an instance, or overwrite what nodes boot from.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "sparkplane-${var.name}-"
  description        = "sparkplane cluster ${var.name}: its nodes"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

# What every node may do, whichever its role: list its prefix, read its parameters, describe.
data "aws_iam_policy_document" "common" {
  statement {
    sid       = "ListOwnPrefix"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${local.bucket}"]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.prefix, "${local.prefix}*"]
    }
  }

  statement {
    sid       = "ReadOwnParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.parameter_path}*"]
  }

  statement {
    sid = "Describe"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeTags",
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLifecycleHooks",
    ]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "node" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ReadWriteOwnPrefix"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["arn:${local.partition}:s3:::${local.bucket}/${local.prefix}*"]
  }

  statement {
    sid = "ScaleOwnGroup"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:UpdateAutoScalingGroup",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "autoscaling:ResourceTag/sparkplane/cluster"
      values   = [var.name]
    }
  }
}

# The master ends its own cluster's instances when lifetime.idleTimeout or lifetime.maxAge is
# reached (the rest, which costs nothing while idle, goes with sparkplane destroy).
data "aws_iam_policy_document" "stop" {
  statement {
    sid       = "StopOwnInstances"
    actions   = ["ec2:TerminateInstances", "ec2:StopInstances"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/sparkplane/cluster"
      values   = [var.name]
    }
  }
}

resource "aws_iam_role_policy" "stop" {
  name   = "sparkplane-stop"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.stop.json
}

resource "aws_iam_role_policy" "node" {
  name   = "sparkplane-node"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "sparkplane-${var.name}-"
  role        = aws_iam_role.node.name
  tags        = local.tags
}

resource "aws_iam_role" "worker" {
  name_prefix        = "sparkplane-${var.name}-w-"
  description        = "sparkplane cluster ${var.name}: its workers, where job code runs"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ReadOwnPrefix"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${local.bucket}/${local.prefix}*"]
  }

  statement {
    sid       = "WriteEventLogs"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["arn:${local.partition}:s3:::${local.bucket}/${local.prefix}event-logs/*"]
  }

  statement {
    sid       = "CompleteOwnLifecycleAction"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "autoscaling:ResourceTag/sparkplane/cluster"
      values   = [var.name]
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "sparkplane-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "worker" {
  name_prefix = "sparkplane-${var.name}-w-"
  role        = aws_iam_role.worker.name
  tags        = local.tags
}
