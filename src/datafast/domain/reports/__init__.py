"""Email reports to site members (weekly, opt-in per member) and the jobs that send mail."""
