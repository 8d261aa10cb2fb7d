# RESULTS.md of `scripts/bench.sh --algos`, from its runs' summaries
# (scripts/bench-report.sh --algos DIR feeds it).
#
# Inputs: $runs (every summary.json, each with .dir = SHAPE-SCENARIO-ALGORITHM),
# $m (machine.env), $a (algos.env), $conf (loadshed's service section of a run).

def r1: . * 10 | round / 10;
def r2: . * 100 | round / 100;
def pct: if . == null then "–" else "\(r1) %" end;
def row: "| " + join(" | ") + " |";
# miss(COND; TEXT): TEXT, in bold when a target is missed (COND false).
def miss($ok; $t): if $ok == false then "**\($t)**" else $t end;
def named($d): [$runs[] | select(.dir == $d)][0];

# The targets, each judged on the rows it is about.
def t_high_steady: 99.5;
def t_high_doubling: 99;
def t_goodput: 95;
def t_p99_x: 2;
def t_queue_per_worker: 0.5;
def t_settle_s: 1;
def t_settle_back_s: 2;

($a.algos | split(" ")) as $algos
| ($a.shapes | split(" ")) as $shapes
| "# loadshed: the limit algorithms with their defaults",
"",
"One run of `make bench-algos` (`scripts/bench.sh --algos`) on this machine: what a user gets from each algorithm without tuning — no `params`, no `min_limit`, `max_limit` or `initial_limit` in loadshed's file — on server shapes of different worker counts and service times.",
"",
"| machine | |",
"|---|---|",
"| CPUs | \($m.cpus) × \($m.cpu_model) |",
"| kernel | \($m.kernel) |",
"| memory | \($m.memory_mib) MiB |",
"| loadshed | commit \($m.commit) |",
"| date | \($m.date) |",
"| load average (1, 5, 15 min) at start / end | \($m.loadavg_start // "–") / \($a.loadavg_end // "–") |",
"| run time | \(($a.seconds // "0") | tonumber | "\(. / 60 | floor) min \(. % 60) s") |",
"",
"## Setup",
"",
"- **server**: ls-server, W workers × S ms of work per request, unbounded accept queue; capacity W × 1000 / S req/s. Shapes: \($shapes | map("\(split("x")[0]) × \(split("x")[1]) ms") | join(", ")).",
"- **load**: ls-loadgen, open loop (Poisson arrivals), 20 % high priority and 80 % low, a new connection per request, deadline 1 s; *ok* = a 200 answer within it. Every run starts after 3 s of unmeasured load at 0.5× capacity.",
"- **steady**: 3× capacity for \($a.steady_s) s. **doubling**: 1.5× capacity for \($a.doubling_s) s; the service time doubles for the middle third (3× then) and returns. **unloaded**: 0.3× capacity for \($a.unloaded_s) s, no protection: the latency floor of the shape.",
"- **loadshed**: high class share 100 %, low 0 %, shed by RST; the algorithm by name, nothing else:",
"",
"```ini",
$conf,
"```",
"",
(if ($a | keys | map(select(startswith("override_"))) | length) > 0
 then "**Not defaults**: this run set \($a | to_entries | map(select(.key | startswith("override_")) | "\(.key | ltrimstr("override_"))=\(.value)") | join(", ")).", ""
 else empty end),
(if ($a.algos_unknown // "") != "" then "Not in this loadshed, left out: \($a.algos_unknown).", "" else empty end),
(if $a.tx_csum == "off" then "The client veth computes its checksums itself (`TB_TX_CSUM=off`, `ethtool -K tx off`): the server side receives full checksums, as from a real NIC.", "" else empty end),
"### Each shape without protection",
"",
"| shape | capacity | unloaded high p99 | at 0.5× for 3 s: offered, goodput |",
"|---|---:|---:|---:|",
($shapes[] as $sh | named("\($sh)-unloaded-none") as $u | select($u)
 | [$sh, "\($u.capacity_rps) req/s", "\($u.high.p99_ms | round) ms",
    (if $u.warmup then "\($u.warmup.offered_rps | round) req/s, \($u.warmup.goodput_rps | round) req/s (\($u.warmup.goodput_rps / $u.warmup.offered_rps * 100 | round) %)" else "–" end)]
 | row),
"",
"## Results",
"",
"Targets: steady — high ok ≥ \(t_high_steady) %, goodput ≥ \(t_goodput) % of capacity, high p99 ≤ \(t_p99_x)× the shape's unloaded high p99, the server's queue ≤ W/2 at the median second; doubling — high ok ≥ \(t_high_doubling) % over the whole run, the limit settled ≤ \(t_settle_s) s after the doubling and ≤ \(t_settle_back_s) s after the return. A missed target is in **bold**; every row is shown.",
"",
"| algorithm | scenario | shape | high ok | low ok | goodput | high p99 / unloaded | queue / W | limit | settled: doubled / back | missed |",
"|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
"| *target* | | | *steady ≥ \(t_high_steady) %, doubling ≥ \(t_high_doubling) %* | | *steady ≥ \(t_goodput) %* | *steady ≤ \(t_p99_x)×* | *steady ≤ \(t_queue_per_worker)* | | *≤ \(t_settle_s) s / ≤ \(t_settle_back_s) s* | |",
(($algos + (if ($a.reference // "") != "" then [$a.reference] else [] end))[] as $al
 | ["steady", "doubling"][] as $sc | $shapes[] as $sh
 | named("\($sh)-\($sc)-\($al)") as $r
 | (if $al == "tuned" then "*tuned by hand: fixed, L = ⌈1.25 W⌉*" else $al end) as $name
 | (named("\($sh)-unloaded-none").high.p99_ms // null) as $floor
 | if $r == null then [$name, $sc, $sh, "not run", "", "", "", "", "", "", ""] | row
   else
   ($sc == "steady") as $st
   | ($r.high.ok_pct >= (if $st then t_high_steady else t_high_doubling end)) as $high_ok
   | ($r.goodput_in_run_pct // $r.goodput_pct) as $goodput
   | (if $st then $goodput >= t_goodput else null end) as $goodput_ok
   | (if $floor == null then null else $r.high.p99_ms / $floor end) as $p99x
   | (if $st and $p99x != null then $p99x <= t_p99_x else null end) as $p99_ok
   | ($r.server_queue.per_worker // null) as $qw
   | (if $st and $qw != null then $qw <= t_queue_per_worker else null end) as $queue_ok
   | ($r.doubling.doubled.settle_s // null) as $sd
   | ($r.doubling.back.settle_s // null) as $sb
   | (if $st then null else ($sd != null and $sd <= t_settle_s) end) as $sd_ok
   | (if $st then null else ($sb != null and $sb <= t_settle_back_s) end) as $sb_ok
   | [$name, $sc, $sh,
      miss($high_ok; $r.high.ok_pct | pct)
        + (if $st then "" else " (doubled: \($r.doubling.doubled.success.high.ok_pct // null | pct))" end),
      ($r.low.ok_pct | pct),
      miss($goodput_ok; "\($goodput | round) %"),
      miss($p99_ok; if $p99x == null then "–" else "\($p99x | r2)× (\($r.high.p99_ms | round) ms)" end),
      miss($queue_ok; if $qw == null then "–" else "\($qw | r2) (\($r.server_queue.median_s | r1))" end),
      (if $st then (if $r.limit_median == null then "–" else "\($r.limit_median | r1)" end)
       else "\($r.doubling.before.limit_final // "–") → \($r.doubling.doubled.limit_final // "–") → \($r.doubling.back.limit_final // "–")" end),
      (if $st then ""
       else miss($sd_ok; if $sd == null then "never" else "\($sd) s" end) + " / "
          + miss($sb_ok; if $sb == null then "never" else "\($sb) s" end) end),
      ([(if $high_ok == false then "high" else empty end), (if $goodput_ok == false then "goodput" else empty end),
        (if $p99_ok == false then "p99" else empty end), (if $queue_ok == false then "queue" else empty end),
        (if $sd_ok == false then "settle" else empty end), (if $sb_ok == false then "settle back" else empty end)]
       | if length == 0 then "none" else join(", ") end)]
   | row
   end),
"",
"- **goodput**: ok answers that came within the run, per second, against the capacity over the run (doubling: its mean, lower while the service time is doubled).",
"- **queue / W**: the server's queue — requests accepted and waiting for a worker, in-flight minus busy workers as ls-server counts them (`/admin/stats`, sampled about every 100 ms) — each second's mean, the median second, over the worker count; in brackets the queue itself.",
"- **limit**: loadshed's limit (`loadshed -j status`, sampled with the queue). steady: the median second; doubling: the median of the last 3 s of each phase (before → doubled → back).",
"- **settled**: seconds from the change until the limit stays, to the end of the phase, within 15 % of that phase's final limit (and at least within 1: the limit is an integer); *never* when it does not, or when the limit still drifts over those last 3 s (its least-squares line moves by more than that band).",
"- **high ok** of doubling: the whole run; in brackets the doubled third alone.",
(if ($a.reference // "") != "" then "- **tuned by hand**: for reference, not a default — the `fixed` algorithm at L = ⌈1.25 W⌉, the limit the queueing-delay target aims at, set with the worker count a user does not know. Its misses are what the shape and the class mix leave to any limit." else empty end),
"",
"The limit, in-flight, goodput and high-class success over time:",
"",
(["steady", "doubling"][] as $sc | $shapes[] as $sh | "![\($sc) \($sh)](\($sc)-\($sh).png)")
