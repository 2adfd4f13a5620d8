// The API, as the page calls it: the key from localStorage on every request and WebSocket, errors as answered.

const KEY_STORAGE = "dexengine.apiKey";

export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

// What a call came back with: `error` is the API's own {code, message, details} when it answered one.
export class Answer {
  constructor(method, path, status, body, error) {
    Object.assign(this, { method, path, status, body, error });
  }
  get ok() {
    return this.error === null;
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function call(method, path, { body, headers = {} } = {}) {
  const sent = { ...headers };
  const key = apiKey();
  if (key) sent.Authorization = `Bearer ${key}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (exc) {
    // No answer at all: nothing from the API to show, so say so in the same shape.
    const error = { code: "NO_ANSWER", message: `the API did not answer (${exc.message})`, details: null };
    return new Answer(method, path, 0, null, error);
  }
  const data = await readBody(response);
  if (response.ok) return new Answer(method, path, response.status, data, null);
  const error = data && typeof data === "object" && data.error ? data.error
    : { code: `HTTP_${response.status}`, message: String(data ?? response.statusText), details: null };
  return new Answer(method, path, response.status, data, error);
}

export const get = (path) => call("GET", path);

// WebSockets carry the key as a subprotocol (browsers cannot set headers on them).
export function openSocket(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}${path}`;
  const key = apiKey();
  return key ? new WebSocket(url, ["dexengine", `dexengine.key.${key}`]) : new WebSocket(url);
}
