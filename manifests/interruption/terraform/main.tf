# The interruption queue fleet-scheduler reads (Provisioner args
# interruptionQueue) and the four EventBridge rules that feed it: the same
# resources as ../cloudformation.yaml. Use it as a module:
#
#   module "fleet_scheduler_interruption" {
#     source       = "./manifests/interruption/terraform"
#     cluster_name = "sesacthon-dev"
#   }

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "cluster_name" {
  description = "The cluster (clusterName in the Provisioner args); the queue and the rules are named after it."
  type        = string
}

resource "aws_sqs_queue" "interruption" {
  name = var.cluster_name
  # A warning is worth two minutes at most; older messages are noise.
  message_retention_seconds = 300
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue_policy" "interruption" {
  queue_url = aws_sqs_queue.interruption.id
  policy = jsonencode({
    Version = "2012-10-17"
    Id      = "EC2InterruptionPolicy"
    Statement = [
      {
        Sid       = "AllowEventBridge"
        Effect    = "Allow"
        Principal = { Service = ["events.amazonaws.com", "sqs.amazonaws.com"] }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.interruption.arn
      },
      {
        Sid       = "DenyHTTP"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.interruption.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

locals {
  # rule name suffix => the events it sends to the queue
  interruption_rules = {
    "spot-interruption"     = { source = ["aws.ec2"], "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
    "rebalance"             = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
    "scheduled-change"      = { source = ["aws.health"], "detail-type" = ["AWS Health Event"] }
    "instance-state-change" = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"] }
  }
}

resource "aws_cloudwatch_event_rule" "interruption" {
  for_each      = local.interruption_rules
  name          = "${var.cluster_name}-${each.key}"
  event_pattern = jsonencode(each.value)
}

resource "aws_cloudwatch_event_target" "interruption" {
  for_each  = local.interruption_rules
  rule      = aws_cloudwatch_event_rule.interruption[each.key].name
  target_id = "InterruptionQueue"
  arn       = aws_sqs_queue.interruption.arn
}

output "queue_name" {
  description = "interruptionQueue in the Provisioner args"
  value       = aws_sqs_queue.interruption.name
}

output "queue_url" {
  value = aws_sqs_queue.interruption.id
}

output "queue_arn" {
  description = "the Resource of AllowInterruptionQueueActions in manifests/iam/policy.json"
  value       = aws_sqs_queue.interruption.arn
}
