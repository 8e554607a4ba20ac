# A private zone with the master's name, so that workers (launched by the group, which must exist
# before anything knows their addresses) find the master without a dependency cycle (seed 001).

resource "aws_route53_zone" "cluster" {
  name          = local.zone_name
  comment       = "sparkplane cluster ${var.name}"
  force_destroy = true

  vpc {
    vpc_id = local.vpc_id
  }

  tags = local.tags
}

resource "aws_route53_record" "master" {
  zone_id = aws_route53_zone.cluster.zone_id
  name    = local.master_dns
  type    = "A"
  ttl     = 30
  records = [aws_instance.master.private_ip]
}
