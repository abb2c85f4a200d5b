// Package redisenv starts real Redis servers in Docker for limitkit's
// integration tests: a standalone server and a 6-node Redis Cluster
// (3 masters, 3 replicas), with the faults the tests need (pause, crash,
// restart, master failover).
//
// The containers run the image named by [Image] (default
// "limitkit-redis:local"). Test machines have no registry access, so the
// image is built locally, from the host's Debian redis-server, by
//
//	integration/scripts/build-redis-image.sh
//
// and redisenv never pulls: a missing image fails the test with that hint.
//
// Every server lives on a private, internal Docker network created for the
// test. Nothing is published on the host: the test process reaches the
// containers at their bridge IP addresses, which works on Linux (and is what
// makes Redis Cluster usable from the host, because the addresses the nodes
// announce to clients are the ones the host dials).
//
// Containers and networks are removed by t.Cleanup, also when the test fails.
// If the test process itself dies, each container still stops by itself after
// ten minutes; the stopped leftovers carry the label "limitkit.integration"
// and can be removed with
//
//	docker rm -f $(docker ps -aq --filter label=limitkit.integration)
//	docker network prune -f --filter label=limitkit.integration
//
// When Docker is unreachable, tests are skipped, or fail when CI=true so a CI
// job cannot go green without having run them.
package redisenv
