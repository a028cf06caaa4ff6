// The dashboard's connection to the API: the bearer token, JSON requests, and ONE event stream for every
// row (GET /tasks/events). Browsers allow about six connections per host, so the page never opens a stream
// per training. The stream is read with fetch (EventSource cannot send an Authorization header); it
// reconnects after the server's `retry:` with Last-Event-ID, so no change is lost across reconnections.
"use strict";

const Api = {
  token: null,

  // The token: from the URL fragment once (never sent to the server), then sessionStorage.
  loadToken() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.get("token")) {
      sessionStorage.setItem("yolo-token", fragment.get("token"));
      fragment.delete("token");
      const rest = fragment.toString().replace(/%2C/gi, ",");  // #compare=<id>,<id> stays readable
      history.replaceState(null, "", location.pathname + (rest ? `#${rest}` : ""));
    }
    this.token = sessionStorage.getItem("yolo-token");
  },

  setToken(token) {
    sessionStorage.setItem("yolo-token", token);
    this.token = token;
  },

  headers(extra = {}) {
    return { ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}), ...extra };
  },

  async request(method, path) {
    const response = await fetch(path, { method, headers: this.headers() });
    if (response.status === 401) {
      this.onUnauthenticated();
      throw new Error("unauthenticated");
    }
    const body = await response.json();
    if (!response.ok && response.status !== 500) throw new Error(this.explain(body, response.status));
    return body;
  },

  // What an error answer says: its detail, else each invalid field's problem (a 422), else its message.
  explain(body, status) {
    const errors = (body.data && body.data.errors) || [];
    const problems = errors.map((error) => error.msg).filter(Boolean).join("; ");
    return body.detail || problems || body.message || `HTTP ${status}`;
  },

  // One artifact's bytes as a Blob, for an <img> through a blob: URL (an <img src> cannot send the token).
  // ?inline=true: a plot is answered as the image itself with its media type, from the run directory or
  // through the API from object storage (this page's CSP keeps fetch on the API).
  async blob(path) {
    const response = await fetch(`${path}?inline=true`, { headers: this.headers() });
    if (response.status === 401) {
      this.onUnauthenticated();
      throw new Error("unauthenticated");
    }
    if (!response.ok) {
      const json = (response.headers.get("Content-Type") || "").startsWith("application/json");
      throw new Error(json ? this.explain(await response.json(), response.status) : `HTTP ${response.status}`);
    }
    return response.blob();
  },

  get(path) {
    return this.request("GET", path);
  },

  onUnauthenticated() {},

  // Save one artifact (GET /tasks/{id}/artifacts/{name}) as a file. A plain <a href> cannot send the bearer
  // token (and a token in a URL ends up in logs and history), so the request goes through fetch with the
  // header, as every other call does. ?redirect=false: an artifact in object storage is answered with its
  // presigned URL as JSON rather than a 307, which fetch would follow itself and this page's CSP
  // (connect-src 'self') would stop, and most buckets' CORS rules too; the page then navigates to the signed
  // URL, which needs no token and downloads (Content-Disposition: attachment), so those bytes never pass
  // through the page. A file the API streams (local mode) arrives as bytes and is saved from a blob: URL
  // (held in memory until saved: fine for YOLO weights, megabytes to a few hundred).
  async download(path, name) {
    const response = await fetch(`${path}?redirect=false`, { headers: this.headers() });
    if (response.status === 401) {
      this.onUnauthenticated();
      throw new Error("unauthenticated");
    }
    const json = (response.headers.get("Content-Type") || "").startsWith("application/json");
    if (!response.ok) {
      const body = json ? await response.json() : {};
      throw new Error(body.detail || body.message || `HTTP ${response.status}`);
    }
    const blob = json ? null : await response.blob();
    const link = document.createElement("a");
    link.href = json ? (await response.json()).data.url : URL.createObjectURL(blob);
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    if (blob) setTimeout(() => URL.revokeObjectURL(link.href), 60_000);  // once the download has surely begun
  },

  // Follow /tasks/events for as long as the page lives: onEvent(name, data) for each event.
  async stream(onEvent, onState) {
    let lastId = null;
    let retry = 3000;
    for (;;) {
      try {
        const extra = { Accept: "text/event-stream", ...(lastId ? { "Last-Event-ID": lastId } : {}) };
        const response = await fetch("/tasks/events", { headers: this.headers(extra) });
        if (response.status === 401) {
          this.onUnauthenticated();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
        onState("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
              else if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("retry:")) retry = Number(line.slice(6).trim()) || retry;
            }
            if (data.length) onEvent(event, JSON.parse(data.join("\n")));
          }
        }
      } catch (error) {
        console.warn("event stream broke:", error);
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  },
};
