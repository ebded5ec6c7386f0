"""What a product's namespaces really use, read from each cluster's Prometheus (an OpenShift
cluster's Thanos querier in production), and the rules that let measured use approve a quota
increase without waiting for a super admin. Usage never blocks a page or a request: when it
cannot be read, it says why, and an increase goes to review."""
