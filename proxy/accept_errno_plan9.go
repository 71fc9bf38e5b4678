package proxy

// acceptRetryable: Plan 9 has no errno values to tell a passing shortage
// from a closed listener; only timeouts are retried there.
func acceptRetryable(error) bool { return false }
