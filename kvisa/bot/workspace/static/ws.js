// The workspace's only script (Content-Security-Policy allows no inline code): the broadcast
// preview and recipient count, and live progress bars.
"use strict";

function csrfOf(form) {
  const field = form.querySelector('input[name="csrf"]');
  return field ? field.value : "";
}

function setupCompose() {
  const form = document.getElementById("compose");
  if (!form) return;
  const count = document.getElementById("recipients");
  let timer = null;
  function previews() {
    for (const box of form.querySelectorAll(".preview")) {
      const lang = box.dataset.lang;
      const text = form.querySelector(`textarea[name="${lang}"]`).value.trim();
      document.getElementById(`preview-${lang}`).textContent =
        [box.dataset.head, text, box.dataset.foot].join("\n\n");
    }
  }
  async function counted() {
    const body = new URLSearchParams(new FormData(form));
    try {
      const answer = await fetch(form.dataset.preview, {
        method: "POST", body, headers: { "X-CSRF-Token": csrfOf(form) }, credentials: "same-origin",
      });
      const data = await answer.json();
      if (!answer.ok) { count.textContent = `${data.field}: ${data.error}`; return; }
      const per = Object.entries(data.per_channel).map(([k, v]) => `${k} ${v}`).join(", ");
      count.textContent = `${count.dataset.label || "Recipients"}: ${data.recipients}` + (per ? ` (${per})` : "") +
        (data.wechat_outside_window ? ` · WeChat > 48 h: ${data.wechat_outside_window}` : "");
      count.dataset.recipients = data.recipients;
    } catch (error) {
      count.textContent = "?";
    }
  }
  function changed() {
    previews();
    clearTimeout(timer);
    timer = setTimeout(counted, 300);
  }
  count.dataset.label = count.textContent.split(":")[0].split("：")[0];
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  changed();
}

function setupProgress() {
  for (const bar of document.querySelectorAll("progress[data-progress]")) {
    const status = bar.parentElement.querySelector("[data-status]");
    async function look() {
      const answer = await fetch(bar.dataset.progress, { credentials: "same-origin" });
      if (!answer.ok) return;
      const data = await answer.json();
      const done = data.total - data.remaining;
      bar.max = data.total || 1;
      bar.value = done;
      status.textContent = `${data.status} · ${done}/${data.total}`;
      status.dataset.state = data.status;
      if (data.status === "queued" || data.status === "running") setTimeout(look, 1000);
    }
    look();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupCompose();
  setupProgress();
});
