variable "node_type" { type = string }

resource "aws_elasticache_cluster" "inventory" {
  cluster_id      = "inventory-${terraform.workspace}"
  engine          = "redis"
  node_type       = var.node_type
  num_cache_nodes = 1
}
