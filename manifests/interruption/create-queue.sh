#!/usr/bin/env bash
# Creates the interruption queue fleet-scheduler reads (Provisioner args
# interruptionQueue) and the four EventBridge rules that feed it, with the
# aws CLI; the same resources as cloudformation.yaml. Safe to run again.
#
#   manifests/interruption/create-queue.sh sesacthon-dev
#
# The queue is named after the cluster. The CLI's usual settings pick the
# region and credentials (AWS_DEFAULT_REGION, AWS_PROFILE, ...); an
# AWS_ENDPOINT_URL is passed on as --endpoint-url (aws-cli v1 does not read
# it for every service), so the script also runs against the sandbox's
# moto_server.
set -euo pipefail
cluster=${1:?usage: $0 CLUSTER_NAME}
queue=$cluster
aws() { command aws ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"; }

# A warning is worth two minutes at most; older messages are noise.
url=$(aws sqs create-queue --queue-name "$queue" \
  --attributes MessageRetentionPeriod=300,SqsManagedSseEnabled=true \
  --query QueueUrl --output text)
arn=$(aws sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn \
  --query Attributes.QueueArn --output text)

# EventBridge may send to the queue; nothing may use it over plain HTTP.
policy='{"Version":"2012-10-17","Id":"EC2InterruptionPolicy","Statement":['
policy+='{"Sid":"AllowEventBridge","Effect":"Allow","Principal":{"Service":["events.amazonaws.com","sqs.amazonaws.com"]},'
policy+='"Action":"sqs:SendMessage","Resource":"'"$arn"'"},'
policy+='{"Sid":"DenyHTTP","Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"'"$arn"'",'
policy+='"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}'
aws sqs set-queue-attributes --queue-url "$url" --attributes "{\"Policy\":\"${policy//\"/\\\"}\"}"

rule() { # rule NAME SOURCE DETAIL-TYPE
  aws events put-rule --name "$cluster-$1" \
    --event-pattern "{\"source\":[\"$2\"],\"detail-type\":[\"$3\"]}" >/dev/null
  aws events put-targets --rule "$cluster-$1" --targets "Id=InterruptionQueue,Arn=$arn" >/dev/null
}
rule spot-interruption     aws.ec2    "EC2 Spot Instance Interruption Warning"
rule rebalance             aws.ec2    "EC2 Instance Rebalance Recommendation"
rule scheduled-change      aws.health "AWS Health Event"
rule instance-state-change aws.ec2    "EC2 Instance State-change Notification"

echo "interruption queue $queue: $url"
echo "set interruptionQueue: $queue in the Provisioner args; the IAM policy's queue ARN is $arn"
