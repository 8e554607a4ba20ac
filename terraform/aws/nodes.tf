# The master (on-demand), the workers' launch template and autoscaling group, and the optional
# gateway. Every node requires IMDSv2, has an encrypted gp3 root volume, and boots with the same
# user-data, which only bootstraps the agent.

resource "aws_instance" "master" {
  ami                    = local.ami_id
  instance_type          = var.master_instance_type
  subnet_id              = local.subnet_ids[0]
  vpc_security_group_ids = [aws_security_group.cluster.id]
  iam_instance_profile   = aws_iam_instance_profile.node.name
  key_name               = var.ssh_key_name
  user_data              = local.user_data["master"]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gib
    encrypted   = true
    tags        = merge(local.tags, { "sparkplane/role" = "master" })
  }

  dynamic "ebs_block_device" {
    for_each = var.master_data_volume_gib > 0 ? [var.master_data_volume_gib] : []

    content {
      device_name = "/dev/sdf"
      volume_type = "gp3"
      volume_size = ebs_block_device.value
      encrypted   = true
      tags        = merge(local.tags, { "sparkplane/role" = "master" })
    }
  }

  tags = merge(local.tags, { Name = "sparkplane-${var.name}-master", "sparkplane/role" = "master" })

  lifecycle {
    ignore_changes = [ami] # a newer AMI must not replace a running master
  }
}

resource "aws_launch_template" "worker" {
  name_prefix            = "sparkplane-${var.name}-worker-"
  description            = "sparkplane cluster ${var.name}: workers"
  image_id               = local.ami_id
  instance_type          = var.worker_instance_types[0]
  key_name               = var.ssh_key_name
  vpc_security_group_ids = [aws_security_group.cluster.id]
  user_data              = base64encode(local.user_data["worker"])
  update_default_version = true

  iam_instance_profile {
    name = aws_iam_instance_profile.worker.name
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = data.aws_ami.node.root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_gib
      encrypted             = true
      delete_on_termination = true
    }
  }

  dynamic "block_device_mappings" {
    for_each = var.worker_data_volume_gib > 0 ? [var.worker_data_volume_gib] : []

    content {
      device_name = "/dev/sdf"

      ebs {
        volume_type           = "gp3"
        volume_size           = block_device_mappings.value
        encrypted             = true
        delete_on_termination = true
      }
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "sparkplane-${var.name}-worker", "sparkplane/role" = "worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { "sparkplane/role" = "worker" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "workers" {
  name                      = "sparkplane-${var.name}-workers"
  min_size                  = var.workers_min
  max_size                  = var.workers_max
  desired_capacity          = var.workers_desired
  vpc_zone_identifier       = local.subnet_ids # spread over the zones by the group
  capacity_rebalance        = var.spot && var.capacity_rebalance
  wait_for_capacity_timeout = "0" # workers join Spark on their own; sparkplane waits for that
  health_check_type         = "EC2"

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = var.spot ? var.on_demand_base : 0
      on_demand_percentage_above_base_capacity = var.spot ? 0 : 100
      spot_allocation_strategy                 = var.spot_allocation_strategy
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.worker.id
        version            = "$Latest"
      }

      dynamic "override" {
        for_each = var.worker_instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "sparkplane-${var.name}-worker", "sparkplane/role" = "worker" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity] # sparkplane and the autoscaler change it at run time

    precondition {
      condition     = var.workers_min <= var.workers_desired && var.workers_desired <= var.workers_max
      error_message = "workers_desired must lie between workers_min and workers_max."
    }
  }
}

# A terminating worker waits until its agent has decommissioned the Spark worker (its executors
# and shuffle blocks move away) and completed this action, or until the timeout. A separate
# resource rather than initial_lifecycle_hook: termination hooks need not exist before the first
# launch, and the group is then created in one call with its capacity.
resource "aws_autoscaling_lifecycle_hook" "decommission" {
  name                   = "sparkplane-decommission"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.decommission_timeout
  default_result         = "CONTINUE"
}

# Instances beside the master and the workers, one per role: the gateway for client-mode work,
# and the monitoring instance, which is also in a group of its own that opens Prometheus and
# Grafana to the allowed networks.
locals {
  extra_instances = {
    for role, v in {
      gateway = { enabled = var.gateway, type = var.gateway_instance_type, groups = [aws_security_group.cluster.id] }
      monitoring = {
        enabled = var.prometheus
        type    = var.monitoring_instance_type
        groups  = compact([aws_security_group.cluster.id, one(aws_security_group.monitoring[*].id)])
      }
    } : role => v if v.enabled
  }
}

resource "aws_instance" "extra" {
  for_each = local.extra_instances

  ami                    = local.ami_id
  instance_type          = each.value.type
  subnet_id              = local.subnet_ids[0]
  vpc_security_group_ids = each.value.groups
  iam_instance_profile   = aws_iam_instance_profile.node.name
  key_name               = var.ssh_key_name
  user_data              = local.user_data[each.key]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gib
    encrypted   = true
    tags        = merge(local.tags, { "sparkplane/role" = each.key })
  }

  tags = merge(local.tags, { Name = "sparkplane-${var.name}-${each.key}", "sparkplane/role" = each.key })

  lifecycle {
    ignore_changes = [ami]
  }
}
