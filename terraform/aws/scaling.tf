# autoscale_policy = "cpu": seed 001's rule in CloudWatch. Out by cpu_step above cpu_high_percent,
# in by cpu_step below cpu_low_percent, each over cpu_evaluation_periods periods of
# cpu_period_seconds, with cpu_cooldown_seconds between actions. The group picks which instance
# goes (the lifecycle hook still lets its agent decommission it first).

locals {
  cpu = var.autoscale_policy == "cpu" ? 1 : 0
}

resource "aws_autoscaling_policy" "cpu_out" {
  count = local.cpu

  name                   = "sparkplane-${var.name}-cpu-out"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = var.cpu_step
  cooldown               = var.cpu_cooldown_seconds
}

resource "aws_autoscaling_policy" "cpu_in" {
  count = local.cpu

  name                   = "sparkplane-${var.name}-cpu-in"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -var.cpu_step
  cooldown               = var.cpu_cooldown_seconds
}

resource "aws_cloudwatch_metric_alarm" "cpu_high" {
  count = local.cpu

  alarm_name          = "sparkplane-${var.name}-cpu-high"
  alarm_description   = "Workers of ${var.name} above ${var.cpu_high_percent}% CPU: add ${var.cpu_step}"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = var.cpu_period_seconds
  evaluation_periods  = var.cpu_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_high_percent
  alarm_actions       = [aws_autoscaling_policy.cpu_out[0].arn]
  tags                = local.tags

  dimensions = {
    AutoScalingGroupName = aws_autoscaling_group.workers.name
  }
}

resource "aws_cloudwatch_metric_alarm" "cpu_low" {
  count = local.cpu

  alarm_name          = "sparkplane-${var.name}-cpu-low"
  alarm_description   = "Workers of ${var.name} below ${var.cpu_low_percent}% CPU: remove ${var.cpu_step}"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = var.cpu_period_seconds
  evaluation_periods  = var.cpu_evaluation_periods
  comparison_operator = "LessThanThreshold"
  threshold           = var.cpu_low_percent
  alarm_actions       = [aws_autoscaling_policy.cpu_in[0].arn]
  tags                = local.tags

  dimensions = {
    AutoScalingGroupName = aws_autoscaling_group.workers.name
  }
}
