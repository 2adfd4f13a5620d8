// An API error as the API answered it: status, code, message, and its details (fields at fault, limits, ids).

import { h } from "./dom.js";

export function errorView(answer, { title } = {}) {
  const error = answer.error;
  const status = answer.status ? `${answer.status} ` : "";
  const rows = Array.isArray(error.details)
    ? error.details.filter((d) => d && typeof d === "object" && d.field)
    : [];
  return h("div", { class: "api-error", role: "alert", dataset: { code: error.code, status: String(answer.status) } },
    h("div", { class: "api-error-head" },
      h("span", { class: "api-error-status" }, `${status}${error.code}`),
      h("span", { class: "api-error-where" }, title || `${answer.method} ${answer.path}`)),
    h("div", { class: "api-error-message" }, error.message),
    rows.length ? h("ul", { class: "api-error-fields" },
      rows.map((d) => h("li", {}, h("code", {}, d.field), ` ${d.message}`, d.type ? h("span", { class: "muted" }, ` (${d.type})`) : null)))
      : null,
    error.details !== null && error.details !== undefined
      ? h("details", { class: "api-error-details" }, h("summary", {}, "details"), h("pre", {}, JSON.stringify(error.details, null, 2)))
      : null);
}

// The fields an error names, so a form can mark them.
export function fieldsAtFault(answer) {
  const details = answer.error && Array.isArray(answer.error.details) ? answer.error.details : [];
  return new Set(details.filter((d) => d && d.field).map((d) => String(d.field)));
}
