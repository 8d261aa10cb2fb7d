-- wrk's totals as one JSON object, written to the file named by $WRK_JSON
-- (scripts/testbed.sh, tb_wrk). Latencies in microseconds.
done = function(summary, latency, requests)
	local path = os.getenv("WRK_JSON")
	if not path or path == "" then
		return
	end
	local f = assert(io.open(path, "w"))
	local e = summary.errors
	f:write(string.format(
		'{"requests":%d,"duration_us":%d,"bytes":%d,' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		latency.min, latency.mean, latency.max,
		latency:percentile(50), latency:percentile(90), latency:percentile(99)))
	f:close()
end
