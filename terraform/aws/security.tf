# One group for every node: all traffic between members; from outside only the agent API (TLS)
# from allowed_cidrs, and SSH from the same networks when a key pair is given. Spark's ports
# (7077, 6066, 8080, 8081, 4040, …) are reachable only from inside the group.

resource "aws_security_group" "cluster" {
  name_prefix = "sparkplane-${var.name}-"
  description = "sparkplane cluster ${var.name}: members talk freely; the agent API from allowed networks only"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "sparkplane-${var.name}" })

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.vpc_id == null || length(var.subnet_ids) > 0
      error_message = "With vpc_id, give subnet_ids too: the subnets of that VPC the nodes go in."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "members" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "everything between the cluster's nodes"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.cluster.id
  description       = "sparkplane agent API (TLS, token)"
  ip_protocol       = "tcp"
  from_port         = var.agent_port
  to_port           = var.agent_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = var.ssh_key_name == null ? toset([]) : toset(var.allowed_cidrs)

  security_group_id = aws_security_group.cluster.id
  description       = "SSH"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.cluster.id
  description       = "packages, S3, SSM, the AWS APIs"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

# The monitoring instance's own group: Prometheus (and Grafana) from allowed_cidrs only. Kept off
# the cluster's group, where Spark may bind those ports on any node.
resource "aws_security_group" "monitoring" {
  count = var.prometheus ? 1 : 0

  name_prefix = "sparkplane-${var.name}-monitoring-"
  description = "sparkplane cluster ${var.name}: Prometheus and Grafana from allowed networks only"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "sparkplane-${var.name}-monitoring" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "monitoring" {
  for_each = var.prometheus ? { for pair in setproduct(var.grafana ? [9090, 3000] : [9090], var.allowed_cidrs) : "${pair[0]} ${pair[1]}" => pair } : {}

  security_group_id = aws_security_group.monitoring[0].id
  description       = each.value[0] == 9090 ? "Prometheus" : "Grafana"
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
  tags              = local.tags
}
