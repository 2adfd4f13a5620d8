// The order form: every order type the engine takes, sent as typed; the API judges it and its error is shown as answered.

import { $, h, replace } from "./dom.js";
import { call, get } from "./api.js";
import { errorView, fieldsAtFault } from "./errors.js";
import { venueTable } from "./order_detail.js";
import { knownSymbols } from "./tokens.js";

const INTEGER_FIELDS = new Set(["slippageBps", "trailingBps", "maxPriceImpactBps"]);

function typedValue(name, raw) {
  if (INTEGER_FIELDS.has(name) && /^-?\d+$/.test(raw)) return Number(raw);
  if (name === "expiresAt") {
    const when = new Date(raw);
    return Number.isNaN(when.getTime()) ? raw : when.toISOString();
  }
  return raw;
}

export class OrderForm {
  constructor({ onAccepted }) {
    this.form = $("#order-form");
    this.result = $("#order-result");
    this.type = $("#order-type");
    this.onAccepted = onAccepted;
    this.type.addEventListener("change", () => this.showFields());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    $("#order-preview").addEventListener("click", () => this.preview());
    this.showFields();
  }

  showFields() {
    const type = this.type.value;
    for (const field of this.form.querySelectorAll("[data-types]")) {
      const shown = field.dataset.types.split(" ").includes(type);
      field.hidden = !shown;
      for (const input of field.querySelectorAll("input")) input.disabled = !shown;
    }
  }

  learnTokens() {
    replace($("#token-list"), knownSymbols().map((s) => h("option", { value: s })));
  }

  body() {
    const body = {};
    for (const input of this.form.querySelectorAll("input[data-field]:not(:disabled), select[data-field]")) {
      const raw = input.value.trim();
      if (raw !== "") body[input.dataset.field] = typedValue(input.dataset.field, raw);
    }
    return body;
  }

  mark(answer) {
    const fields = answer ? fieldsAtFault(answer) : new Set();
    for (const input of this.form.querySelectorAll("[data-field]")) input.classList.toggle("at-fault", fields.has(input.dataset.field));
  }

  async submit() {
    const idempotencyKey = $("#order-idempotency").value.trim();
    const headers = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    const button = $("#order-submit");
    button.disabled = true;
    const answer = await call("POST", "/api/orders/execute", { body: this.body(), headers });
    button.disabled = false;
    this.mark(answer.ok ? null : answer);
    if (!answer.ok) {
      replace(this.result, errorView(answer));
      return;
    }
    const accepted = answer.body;
    replace(this.result, h("div", { class: "accepted", dataset: { orderId: accepted.orderId } },
      h("strong", {}, `${answer.status} ${accepted.created ? "accepted" : "already known"}`), " order ",
      h("code", {}, accepted.orderId), ` (${accepted.order.type} ${accepted.order.amountIn} ${accepted.order.tokenIn} → ${accepted.order.tokenOut}), ${accepted.status}`));
    this.onAccepted(accepted.orderId);
  }

  async preview() {
    const body = this.body();
    const params = new URLSearchParams();
    for (const name of ["tokenIn", "tokenOut", "amountIn", "slippageBps"]) if (body[name] !== undefined) params.set(name, body[name]);
    const answer = await get(`/api/quote?${params}`);
    this.mark(answer.ok ? null : answer);
    if (!answer.ok) {
      replace(this.result, errorView(answer));
      return;
    }
    const q = answer.body;
    const chosen = { kind: q.route.kind, poolIds: q.route.legs.map((l) => l.poolId) };
    replace(this.result, h("div", { class: "preview" },
      h("div", {}, h("strong", {}, `now: ${q.route.amountOut} ${q.tokenOut}`), ` for ${q.amountIn} ${q.tokenIn} on ${q.bestDex}`,
        q.route.minAmountOut ? ` (at least ${q.route.minAmountOut})` : ""),
      venueTable(q.quotes, { chosen, tokenOut: q.tokenOut, inBaseUnits: false }),
      h("p", { class: "reason" }, q.reason)));
  }
}
