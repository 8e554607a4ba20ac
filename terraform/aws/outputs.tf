output "master_private_ip" {
  description = "The master's address inside the VPC."
  value       = aws_instance.master.private_ip
}

output "master_public_ip" {
  description = "The master's public address (empty in a subnet without public addresses)."
  value       = aws_instance.master.public_ip
}

output "master_dns" {
  description = "The master's name in the cluster's private zone."
  value       = local.master_dns
}

output "master_instance_id" {
  description = "The master's instance id."
  value       = aws_instance.master.id
}

output "agent_url" {
  description = "The master agent's API (TLS; authenticated with the cluster token)."
  value       = "https://${coalesce(aws_instance.master.public_ip, aws_instance.master.private_ip)}:${var.agent_port}"
}

output "autoscaling_group" {
  description = "Name of the workers' autoscaling group."
  value       = aws_autoscaling_group.workers.name
}

output "bucket" {
  description = "The cluster's bucket."
  value       = local.bucket
}

output "s3_prefix" {
  description = "The cluster's key prefix in the bucket."
  value       = local.prefix
}

output "parameter_path" {
  description = "SSM path of the cluster's secrets."
  value       = local.parameter_path
}

output "security_group_id" {
  description = "The group every node is in."
  value       = aws_security_group.cluster.id
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "The subnets the nodes go in."
  value       = local.subnet_ids
}

output "role_name" {
  description = "The IAM role of the master, gateway and monitoring nodes."
  value       = aws_iam_role.node.name
}

output "worker_role_name" {
  description = "The workers' IAM role, which cannot resize the group or end instances."
  value       = aws_iam_role.worker.name
}

output "zone_id" {
  description = "The private Route53 zone."
  value       = aws_route53_zone.cluster.zone_id
}

output "gateway_private_ip" {
  description = "The gateway's address inside the VPC, when there is one."
  value       = var.gateway ? aws_instance.extra["gateway"].private_ip : null
}

output "gateway_public_ip" {
  description = "The gateway's public address, when there is one."
  value       = var.gateway ? aws_instance.extra["gateway"].public_ip : null
}

output "prometheus_url" {
  description = "Prometheus on the monitoring instance, when there is one: TLS with the cluster's certificate, user admin, the cluster's secret as password."
  value       = var.prometheus ? "https://${coalesce(aws_instance.extra["monitoring"].public_ip, aws_instance.extra["monitoring"].private_ip)}:9090" : null
}

output "grafana_url" {
  description = "Grafana on the monitoring instance, when there is one: TLS with the cluster's certificate, user admin, the cluster's secret as password."
  value       = var.grafana ? "https://${coalesce(aws_instance.extra["monitoring"].public_ip, aws_instance.extra["monitoring"].private_ip)}:3000" : null
}
