variable "instance_class" { type = string }
variable "storage_gb" { type = number }
variable "region" { type = string }

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.0" }
  }
}

provider "aws" {
  region = var.region
}

resource "aws_db_instance" "payments" {
  identifier        = "payments-${terraform.workspace}"
  engine            = "postgres"
  instance_class    = var.instance_class
  allocated_storage = var.storage_gb
  skip_final_snapshot = true
}
