// Package redistest gives tests a real, disposable Redis: a standalone server
// (Server, Start) or a three-master Cluster (Cluster), each a local
// redis-server process on 127.0.0.1 that dies with the test.
//
// REDIS_URL, when set, points Server and Start at an existing Redis instead;
// that database must be disposable, because it is flushed before use, and
// the helpers that stop or restart the server skip there. Packages that
// share one REDIS_URL flush each other's data, so run them with go test -p 1. When neither
// REDIS_URL nor /usr/bin/redis-server (or redis-server on PATH) is available,
// the helpers skip the test, or fail it when CI=true, so that CI never passes
// by skipping every Redis test.
//
// Servers run with --save "" and --appendonly no (a restart loses all state,
// which the restart tests rely on), in a private temporary directory, with
// --daemonize no so that the process is the child the helper kills; on Linux
// the child is also killed if the test binary dies.
package redistest
