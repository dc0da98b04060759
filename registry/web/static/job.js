// Live progress on a training job's page: fetch the job's JSON every 2 s and redraw the step,
// status and loss chart (geometry comes drawn from the server). A finished job reloads once so
// the page shows its result, previews and no cancel button. No inline script (CSP).
(() => {
  const job = document.getElementById("job");
  if (!job) return;
  const finished = new Set(["succeeded", "failed", "cancelled"]);
  const set = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };

  function draw(data) {
    const eta = data.eta_s ? ` · about ${Math.round(data.eta_s)} s left` : "";
    const waiting = data.status === "queued" && !data.step;
    set("job-progress", waiting ? "waiting for a worker" : `step ${data.step}/${data.total_steps}${eta}`);
    set("job-status", data.status);
    set("job-worker", data.worker ? data.worker.name : "none yet");
    set("job-attempts", `${data.attempts} of ${data.max_attempts}`);
    const bar = document.getElementById("job-bar");
    if (bar) { bar.max = data.total_steps; bar.value = data.step; }
    const chart = data.chart;
    if (chart) {
      document.getElementById("loss-line").setAttribute("points", chart.points);
      set("loss-title", `Loss from ${chart.high} to ${chart.low} over steps ${chart.first_step}–${chart.last_step}`);
      set("loss-caption", `Training loss, ${chart.count} points (high ${chart.high}, low ${chart.low})`);
      document.getElementById("loss-figure").hidden = false;
      const empty = document.getElementById("loss-empty");
      if (empty) empty.remove();
    }
  }

  async function poll() {
    let data;
    try {
      const response = await fetch(job.dataset.progress, { headers: { Accept: "application/json" } });
      if (!response.ok) return;  // gone or no longer ours: stop polling
      data = await response.json();
    } catch {
      setTimeout(poll, 2000);  // the network blinked: try again
      return;
    }
    draw(data);
    if (finished.has(data.status)) {
      if (!finished.has(job.dataset.status)) window.location.reload();
      return;
    }
    setTimeout(poll, 2000);
  }

  if (!finished.has(job.dataset.status)) setTimeout(poll, 2000);
})();
