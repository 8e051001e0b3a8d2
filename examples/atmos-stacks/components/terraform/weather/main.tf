# A small root module: it records, in a local file, where the station is and how it reports.
# No provider account is needed (the local provider), so any stage can apply it.
terraform {
  required_version = ">= 1.0.0"
  required_providers {
    local = { source = "hashicorp/local", version = "~> 2.5" }
  }
}

variable "stage" {
  type        = string
  description = "The stage (the stack's vars.stage)."
}

variable "location" {
  type        = string
  description = "Where the station is."
}

variable "lang" {
  type        = string
  description = "The language of its reports."
  default     = "en"
}

variable "units" {
  type        = string
  description = "m (metric) or u (US)."
  default     = "m"
}

variable "owner" {
  type        = string
  description = "Who runs it (set by the deployment file on top of the stack)."
  default     = "unknown"
}

resource "local_file" "station" {
  filename = "${path.module}/station.${var.stage}.json"
  content = jsonencode({
    stage    = var.stage
    location = var.location
    lang     = var.lang
    units    = var.units
    owner    = var.owner
  })
}

output "station" {
  value = local_file.station.filename
}
