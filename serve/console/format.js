// How figures are written on the page. Amounts stay the API's decimal strings; only prices are numbers.

export function unitsToTokens(units, decimals) {
  // Base units (an integer string) to token units, exactly: "224210207", 6 -> "224.210207".
  if (units === null || units === undefined || decimals === undefined) return null;
  let digits = String(units);
  const negative = digits.startsWith("-");
  if (negative) digits = digits.slice(1);
  if (!/^\d+$/.test(digits)) return String(units);
  digits = digits.padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return (negative ? "-" : "") + whole + (fraction ? `.${fraction}` : "");
}

export function shortAmount(text, places = 6) {
  // "224.173533912" -> "224.173533" (the full figure stays in the cell's title).
  if (text === null || text === undefined) return "";
  const value = String(text);
  const dot = value.indexOf(".");
  return dot < 0 || value.length - dot - 1 <= places ? value : value.slice(0, dot + 1 + places);
}

export function price(value) {
  if (value === null || value === undefined || value === "") return "";
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  const size = Math.abs(number);
  if (size >= 1000) return number.toFixed(2);
  if (size >= 1) return number.toFixed(4);
  if (size === 0) return "0";
  return number.toPrecision(5);
}

export function bps(value) {
  if (value === null || value === undefined) return "";
  return `${Number(value).toFixed(2)} bps`;
}

export function clock(timestamp) {
  if (!timestamp) return "";
  const when = new Date(timestamp);
  return Number.isNaN(when.getTime()) ? String(timestamp) : when.toLocaleTimeString([], { hour12: false });
}

export function seconds(value) {
  if (value === null || value === undefined) return "";
  const s = Number(value);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function shortId(orderId) {
  return String(orderId).slice(0, 8);
}
