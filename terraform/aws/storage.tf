# The cluster's bucket, unless one is given: artifacts (the sparkplane binary, the Spark
# tarball), job code, inputs and outputs, Spark event logs. Created buckets go with the cluster.

resource "aws_s3_bucket" "this" {
  count = local.create_bucket ? 1 : 0

  bucket_prefix = "sparkplane-${var.name}-"
  force_destroy = true
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  count = local.create_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  count = local.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count = local.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}
