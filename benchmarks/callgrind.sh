#!/usr/bin/env bash
# callgrind.sh SCRIPT.lua NKEYS KEY... NUMBER...: the instructions
# redis-server runs for one call of SCRIPT (a composed script from
# redisstore/testdata), counted by callgrind: unlike a time, the count does
# not depend on what else the machine runs, so two versions of a script
# compare exactly. It starts its own redis-server under valgrind on a free
# port of 127.0.0.1, warms the script up, counts N calls (default 5000) and
# prints the instructions per call twice: inside EVALSHA alone, and for the
# whole call (reading and parsing the command, the script, the reply; the
# kernel's share is not counted). It stops the server when done.
#
# The NUMBERs are packed into the script's one argument as the store packs
# them (redisstore/request.go: little-endian doubles; '' or nan is the NaN
# that makes the script read Redis's TIME). __rand_int__ in a KEY is
# replaced on every call by a number drawn from 1000, as redis-benchmark
# does. Needs valgrind, python3 and redis-server.
#
#   cd benchmarks
#   ./callgrind.sh ../redisstore/testdata/token-bucket.lua \
#       1 'm:__rand_int__' '' 1 0 0 1000000000 3600000000 1000000000
#
# (one key, then the token bucket's numbers for a 1000000000/hour limit:
# see redisstore/lua/one.lua.) A batch of the batched script takes its keys,
# then each decision's number of limits followed by its numbers; with
# PER=50 the counts are divided by 50, per decision of a batch of 50.
set -euo pipefail
script=${1:?usage: callgrind.sh SCRIPT.lua NKEYS KEY... NUMBER...}
shift
for tool in valgrind callgrind_control redis-server python3; do
	command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done

count() { # count FUNCTION NKEYS KEY... NUMBER...: instructions per call inside FUNCTION
	local fn=$1
	shift
	N=${N:-5000} PER=${PER:-1} python3 - "$fn" "$script" "$@" <<'EOF'
import glob, os, random, socket, struct, subprocess, sys, tempfile, time

fn, script, nkeys, rest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
keys, numbers = rest[:nkeys], rest[nkeys:]
argv = struct.pack('<%dd' % len(numbers), *(float('nan') if x in ('', 'nan') else float(x) for x in numbers))
n, per = int(os.environ['N']), int(os.environ['PER'])

def resp(*args):
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(out)

def skip(buf, i):
    """The end of the reply that starts at buf[i], or None if incomplete."""
    j = buf.find(b'\r\n', i)
    if j < 0:
        return None
    t = buf[i:i + 1]
    if t in (b'+', b'-', b':'):
        return j + 2
    if t == b'$':
        size = int(buf[i + 1:j])
        end = j + 2 if size < 0 else j + 4 + size
        return end if end <= len(buf) else None
    if t == b'*':
        k = j + 2
        for _ in range(int(buf[i + 1:j])):
            k = skip(buf, k)
            if k is None:
                return None
        return k
    sys.exit('callgrind.sh: unexpected reply %r' % buf[i:i + 40])

d = tempfile.mkdtemp()
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
vg = subprocess.Popen(['valgrind', '--tool=callgrind', '--toggle-collect=' + fn,
                       '--callgrind-out-file=%s/cg.out' % d, 'redis-server', '--port', str(port),
                       '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', d],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            c = socket.create_connection(('127.0.0.1', port))
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit('callgrind.sh: redis-server under valgrind did not start')
    buf = b''
    def calls(k, command):
        global buf
        for off in range(0, k, 50):
            m = min(50, k - off)
            c.sendall(b''.join(command() for _ in range(m)))
            i = 0
            for _ in range(m):
                while True:
                    e = skip(buf, i)
                    if e is not None:
                        break
                    buf += c.recv(1 << 16)
                if buf[i:i + 1] == b'-':
                    # An error costs far less than a decision: say so
                    # rather than print a plausible small number.
                    sys.exit('callgrind.sh: the script answers with an error: %s' % buf[i:e].decode(errors='replace').strip())
                i = e
            buf = buf[i:]
    c.sendall(resp('SCRIPT', 'LOAD', open(script, 'rb').read()))
    while skip(buf, 0) is None:
        buf += c.recv(1 << 16)
    if not buf.startswith(b'$'):
        sys.exit('callgrind.sh: SCRIPT LOAD: %s' % buf.decode(errors='replace').strip())
    sha, buf = buf.split(b'\r\n')[1], buf[skip(buf, 0):]
    draw = lambda k: k.replace('__rand_int__', '%012d' % random.randrange(1000))
    command = lambda: resp('EVALSHA', sha, nkeys, *[draw(k) for k in keys], argv)
    calls(2000, command)  # warm-up: every key exists, the script is compiled
    subprocess.run(['callgrind_control', '-z', str(vg.pid)], capture_output=True)
    calls(n, command)
    subprocess.run(['callgrind_control', '-d', str(vg.pid)], capture_output=True)
    out = max(glob.glob(d + '/cg.out*'), key=os.path.getmtime)
    with open(out, errors='replace') as f:
        ir = next(int(l.split()[1]) for l in f if l.startswith(('summary:', 'totals:')))
    print('%.0f' % (ir / n / per))
finally:
    vg.kill()
    vg.wait()
    subprocess.run(['rm', '-rf', d])
EOF
}

name=$(basename "$script" .lua)
inside=$(count evalShaCommand "$@")
all=$(count aeMain "$@")
printf '%-24s %8s instructions per call inside EVALSHA\n' "$name" "$inside"
printf '%-24s %8s instructions per call in all (aeMain)\n' "$name" "$all"
