"""flowwatch: VPC Flow Logs network monitoring (CloudWatch, SNS, Athena) in one command."""

__version__ = "0.1.0"
