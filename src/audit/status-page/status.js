// The status page's script (docs/auditor.md, "Status page"). Plain JavaScript served from this
// origin, no build step. Every piece of data goes into the page through textContent or an
// attribute set by the DOM API, never as HTML: repository names, tags, reasons and report text
// come from outside. The viewer token is posted once to /status/session and never kept here.

let session = null;
let findingsVerdict = "violation";
let findingsNext = null;

/** An element with text and attributes; children appended. */
function el(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function byId(id) {
  return document.getElementById(id);
}

/** A link only for http(s) URLs; anything else (javascript:, data:) is shown as text. */
function safeLink(value) {
  if (typeof value !== "string" || value.length === 0) return null;
  try {
    const url = new URL(value);
    if (url.protocol === "https:" || url.protocol === "http:") {
      return el("a", { href: url.href, rel: "noreferrer noopener", text: value });
    }
  } catch {
    // not a URL: text below
  }
  return el("span", { text: value });
}

function shortDigest(digest) {
  return typeof digest === "string" ? digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, "$1…") : "";
}

function digestNode(digest) {
  if (!digest) return el("span", { text: "—" });
  return el("code", { title: digest, text: shortDigest(digest) });
}

function when(iso) {
  if (!iso) return el("span", { text: "—" });
  const date = new Date(iso);
  return el("time", { datetime: iso, text: Number.isNaN(date.getTime()) ? iso : date.toLocaleString() });
}

function yesNo(value, yes, no) {
  return el("span", { className: `cell ${value ? "yes" : "no"}`, text: value ? yes : no });
}

/** A table that turns into labelled cards on a phone. */
function table(columns, rows) {
  const head = el(
    "thead",
    {},
    el("tr", {}, ...columns.map((column) => el("th", { scope: "col", text: column }))),
  );
  const body = el("tbody");
  for (const cells of rows) {
    const row = el("tr");
    cells.forEach((cell, index) => {
      const td = el("td", { "data-label": columns[index] });
      td.append(
        cell instanceof Node
          ? cell
          : document.createTextNode(cell === null || cell === undefined ? "—" : String(cell)),
      );
      row.append(td);
    });
    body.append(row);
  }
  return el("table", { className: "cards" }, head, body);
}

async function api(path, init = {}) {
  const headers = { accept: "application/json", ...(init.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...init, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401 && path !== "/status/session") showSignIn("Your session ended: sign in again.");
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function post(path, body) {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(session ? { "x-status-csrf": session.csrf } : {}) },
    body: JSON.stringify(body),
  });
}

function showSignIn(message) {
  session = null;
  byId("app").hidden = true;
  byId("who").hidden = true;
  byId("sign-out").hidden = true;
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message || "";
  byId("token").focus();
}

function showApp() {
  byId("sign-in").hidden = true;
  byId("app").hidden = false;
  byId("who").hidden = false;
  byId("who").textContent =
    session.role === "acknowledger"
      ? `Signed in as ${session.name} (may acknowledge)`
      : "Signed in as viewer";
  byId("sign-out").hidden = false;
  route();
  // The sign-in form is gone: keyboard users continue from the current view's tab.
  document.querySelector('.tabs a[aria-current="page"]')?.focus();
}

function route() {
  if (!session) return;
  const view = (location.hash || "#search").slice(1);
  const known = ["search", "promotions", "findings", "matrix"].includes(view) ? view : "search";
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === known) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${known}`;
  if (known === "promotions") void loadPromotions();
  if (known === "findings") void loadFindings(false);
  if (known === "matrix") void loadMatrix();
}

// Search ---------------------------------------------------------------------------------------

/** Which search is current: a later one (or a re-ask while checks run) replaces it. */
let searchGeneration = 0;
/** While some mirror is still being checked, the search is asked again this often, this many times. */
const RECHECK_MS = 1000;
const RECHECK_TIMES = 60;

async function search(query, recheck = 0) {
  const generation = recheck === 0 ? ++searchGeneration : searchGeneration;
  const status = byId("search-status");
  const results = byId("search-results");
  if (recheck === 0) status.textContent = "Searching…";
  try {
    const answer = await api(`/status/api/search?q=${encodeURIComponent(query)}`);
    if (generation !== searchGeneration) return;
    results.replaceChildren();
    status.textContent =
      answer.hits.length === 0
        ? `Nothing the manifests promote matches “${query}”.`
        : `${answer.hits.length}${answer.truncated ? "+" : ""} image version(s) match “${query}”.`;
    if (answer.hits.length > 0 && answer.verification !== "on") results.append(unverifiedNote());
    for (const hit of answer.hits) results.append(hitCard(hit));
    const checking = answer.hits.some((hit) =>
      hit.mirrors.some((mirror) => mirror.verified?.state === "checking"),
    );
    if (checking && recheck < RECHECK_TIMES) {
      setTimeout(() => {
        if (generation === searchGeneration) void search(query, recheck + 1);
      }, RECHECK_MS);
    }
  } catch (error) {
    if (generation === searchGeneration) status.textContent = `Search failed: ${error.message}`;
  }
}

/** Said plainly when the auditor has no trust settings: what is shown is seen, not verified. */
function unverifiedNote() {
  return el(
    "p",
    { className: "note", id: "unverified-note" },
    el("strong", { text: "Signatures are not verified here. " }),
    "A signature or attestation below is one the auditor saw pushed, and approvals are what the promotion job reported. ",
    "To verify them, start the auditor with ",
    el("code", { text: "--public-key FILE" }),
    " (or ",
    el("code", { text: "--policy FILE" }),
    "), as for ",
    el("code", { text: "promoter verify" }),
    ".",
  );
}

function hitCard(hit) {
  const title = el(
    "h3",
    {},
    `${hit.image} `,
    el("code", { text: hit.tags.length ? hit.tags.join(", ") : "(no tag)" }),
  );
  const meta = el(
    "p",
    {},
    "Project ",
    el("strong", { text: hit.project }),
    " · digest ",
    el("code", { text: hit.digest }),
  );
  const rows = hit.mirrors.map((mirror) => [
    el("code", { text: mirror.mirror }),
    yesNo(mirror.present, "present", "not seen"),
    mirror.tags.length ? mirror.tags.join(", ") : "—",
    signatureCell(mirror),
    attestationCell(mirror),
    when(mirror.firstSeen),
    mirror.problem || (mirror.violation ? "violation in this repository" : "—"),
  ]);
  return el(
    "article",
    { className: "hit" },
    title,
    meta,
    table(["Mirror", "State", "Tags", "Signature", "Attestation / approval", "First seen", "Problem"], rows),
  );
}

/** A verdict's badge: valid is good, missing/invalid/unapproved/unreadable bad. */
function verdictBadge(status, what) {
  const good = status === "valid";
  return el("span", {
    className: `cell ${good ? "yes" : "no"}`,
    "data-status": status,
    text: `${what} ${status}`,
  });
}

function pendingBadge(text) {
  return el("span", { className: "cell pending", text });
}

/** A key id (sha256 of the public key) shortened, whole in its title; keyless subjects as they are. */
function signerNode(signer) {
  return /^sha256:[0-9a-f]{64}$/.test(signer)
    ? el("code", { title: signer, text: `key ${shortDigest(signer)}` })
    : el("span", { text: signer });
}

/** Who signed or why not, as text. */
function verdictDetail(node, verdict) {
  if (verdict.status === "valid" && verdict.signers.length) {
    const by = el("span", { className: "signer" }, " by ");
    verdict.signers.forEach((signer, index) => {
      if (index > 0) by.append(", ");
      by.append(signerNode(signer));
    });
    node.append(by);
  }
  if (verdict.status !== "valid" && verdict.reasons.length) {
    node.append(el("span", { className: "reason", text: verdict.reasons.join("; ") }));
  }
}

function signatureCell(mirror) {
  const node = el("span", { className: "verdict signature" });
  const verified = mirror.verified || { state: "not-checked" };
  if (verified.state === "checking") node.append(pendingBadge("checking…"));
  else if (verified.state === "known") {
    node.append(verdictBadge(verified.signature.status, "signature"));
    verdictDetail(node, verified.signature);
  } else {
    node.append(
      el("span", {
        className: "cell pending",
        text: mirror.signature ? "signature seen, not verified" : "no signature seen (not verified)",
      }),
    );
  }
  return node;
}

function attestationCell(mirror) {
  const node = el("span", { className: "verdict attestation" });
  const verified = mirror.verified || { state: "not-checked" };
  if (verified.state === "checking") node.append(pendingBadge("checking…"));
  else if (verified.state === "known") {
    const attestation = verified.attestation;
    node.append(verdictBadge(attestation.status, "attestation"));
    verdictDetail(node, attestation);
    if (attestation.approvers.length) {
      node.append(
        el(
          "span",
          { className: "approvers verified" },
          "approved by ",
          el("strong", { text: attestation.approvers.join(", ") }),
          " (verified)",
        ),
      );
    }
    if (attestation.changes.length || attestation.manifests.length) {
      const where = el("span", { className: "change-line" });
      for (const change of attestation.changes) where.append(safeLink(change), " ");
      for (const line of attestation.manifests)
        where.append(el("code", { className: "manifest-line", text: line }), " ");
      node.append(where);
    }
  } else {
    node.append(
      el("span", {
        className: "cell pending",
        text: mirror.attestation ? "attestation seen, not verified" : "no attestation seen (not verified)",
      }),
    );
  }
  // What an uploaded report claims is shown apart, never as verified.
  if (mirror.approvedBy.length || mirror.change) {
    const reported = el("span", { className: "reported" }, "Reported by the promotion job: ");
    if (mirror.approvedBy.length) reported.append(`approved by ${mirror.approvedBy.join(", ")}`);
    const change = safeLink(mirror.change);
    if (change) reported.append(mirror.approvedBy.length ? " · " : "", change);
    node.append(reported);
  }
  return node;
}

// Promotions -----------------------------------------------------------------------------------

async function loadPromotions() {
  const status = byId("promotions-status");
  const list = byId("promotions-list");
  status.textContent = "Loading…";
  try {
    const answer = await api("/status/api/promotions");
    list.replaceChildren();
    status.textContent = answer.reports.length === 0 ? "No promotion report uploaded yet." : "";
    for (const report of answer.reports) {
      const counts = Object.entries(report.outcomes)
        .map(([outcome, count]) => `${count} ${outcome}`)
        .join(", ");
      const change = safeLink(report.change);
      list.append(
        el(
          "article",
          { className: "report" },
          el(
            "h3",
            {},
            when(report.createdAt || report.receivedAt),
            " · ",
            change || el("span", { text: "no change named" }),
          ),
          el(
            "p",
            {},
            report.approvedBy.length ? `Approved by ${report.approvedBy.join(", ")}. ` : "",
            report.revision ? `Revision ${report.revision}. ` : "",
            counts,
          ),
          report.edges.length
            ? table(
                ["Destination", "Tag", "Digest", "Outcome", "Reason"],
                report.edges.map((edge) => [
                  el("code", { text: edge.destination }),
                  edge.tag || "—",
                  digestNode(edge.digest),
                  el("span", {
                    className: `cell ${["copied", "tagged"].includes(edge.outcome) ? "yes" : "no"}`,
                    text: edge.outcome,
                  }),
                  edge.reason || "—",
                ]),
              )
            : report.unlistedEdges
              ? null
              : el("p", { text: "Nothing copied: every edge was already in place." }),
          report.unlistedEdges
            ? el("p", {
                text: `${report.unlistedEdges} more edge(s) not listed here: see the report CI uploaded.`,
              })
            : null,
        ),
      );
    }
  } catch (error) {
    status.textContent = `Could not load promotions: ${error.message}`;
  }
}

// Findings -------------------------------------------------------------------------------------

async function loadFindings(more) {
  const status = byId("findings-status");
  const list = byId("findings-list");
  status.textContent = "Loading…";
  const cursor = more && findingsNext !== null ? `&before=${findingsNext}` : "";
  try {
    const answer = await api(`/status/api/findings?verdict=${findingsVerdict}${cursor}`);
    findingsNext = answer.next;
    byId("findings-more").hidden = findingsNext === null;
    status.textContent =
      answer.findings.length === 0 && !more
        ? `No ${findingsVerdict === "violation" ? "violations" : "verified findings"}.`
        : "";
    const rows = answer.findings.map((finding) => {
      const slash = finding.repository.indexOf("/");
      return [
        when(finding.receivedAt),
        el("code", { text: slash > 0 ? finding.repository.slice(0, slash) : finding.repository }),
        el("code", { text: slash > 0 ? finding.repository.slice(slash + 1) : "" }),
        finding.tag || "—",
        digestNode(finding.digest),
        el("span", {}, el("strong", { text: finding.rule }), ": ", finding.reason),
        acknowledgement(finding),
      ];
    });
    const view = table(["Time", "Registry", "Repository", "Tag", "Digest", "Reason", "Acknowledged"], rows);
    if (more) list.append(view);
    else list.replaceChildren(view);
  } catch (error) {
    status.textContent = `Could not load findings: ${error.message}`;
  }
}

function acknowledgement(finding) {
  if (finding.acknowledged) {
    const ack = finding.acknowledged;
    return el("span", {}, el("strong", { text: ack.by }), `: ${ack.reason} (`, when(ack.at), ")");
  }
  if (finding.verdict !== "violation") return el("span", { text: "—" });
  if (!session || session.role !== "acknowledger") return el("span", { text: "not yet" });
  const id = `ack-${finding.seq}`;
  const input = el("input", { id, name: "reason", required: true, maxlength: 1000, autocomplete: "off" });
  const error = el("span", { className: "error", role: "alert" });
  const form = el(
    "form",
    { className: "ack" },
    el("label", { for: id, text: `Why is finding ${finding.seq} acceptable?` }),
    input,
    el("button", { type: "submit", text: "Acknowledge" }),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await post(`/status/api/findings/${finding.seq}/acknowledge`, { reason: input.value });
      form.replaceWith(acknowledgement({ ...finding, acknowledged: answer.acknowledged }));
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  return form;
}

// Matrix ---------------------------------------------------------------------------------------

async function loadMatrix(project) {
  const status = byId("matrix-status");
  const holder = byId("matrix-table");
  const select = byId("project");
  status.textContent = "Loading…";
  try {
    const chosen = project ?? (select.value || null);
    let answer = await api(`/status/api/matrix${chosen ? `?project=${encodeURIComponent(chosen)}` : ""}`);
    if (answer.project === null && answer.projects.length > 0) {
      answer = await api(`/status/api/matrix?project=${encodeURIComponent(answer.projects[0])}`);
    }
    select.replaceChildren(
      ...answer.projects.map((name) =>
        el("option", { value: name, text: name, selected: name === answer.project }),
      ),
    );
    status.textContent = answer.project === null ? "The manifests promote nothing." : "";
    const head = el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Image" }),
        ...answer.mirrors.map((mirror) => el("th", { scope: "col" }, el("code", { text: mirror }))),
      ),
    );
    const body = el("tbody");
    for (const image of answer.images) {
      body.append(
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("code", { text: image.image })),
          ...image.cells.map((cell) =>
            el(
              "td",
              {},
              el("span", {
                className: `cell state-${cell.state}`,
                title: `${cell.mirror}: ${cell.state}`,
                text: cell.state.replace("-", " "),
              }),
            ),
          ),
        ),
      );
    }
    holder.replaceChildren(el("table", { className: "matrix" }, head, body));
  } catch (error) {
    status.textContent = `Could not load the matrix: ${error.message}`;
  }
}

// Start ----------------------------------------------------------------------------------------

function start() {
  byId("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = byId("token");
    try {
      session = await post("/status/session", { token: input.value });
      input.value = "";
      showApp();
    } catch (error) {
      input.value = "";
      showSignIn(
        error.message === "wrong token" ? "That token is not a viewer or acknowledger token." : error.message,
      );
    }
  });
  byId("sign-out").addEventListener("click", async () => {
    await post("/status/session", { signOut: true }).catch(() => undefined);
    showSignIn("Signed out.");
  });
  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = byId("q").value.trim();
    if (query) void search(query);
  });
  byId("show-violations").addEventListener("click", () => switchFindings("violation"));
  byId("show-verified").addEventListener("click", () => switchFindings("verified"));
  byId("findings-more").addEventListener("click", () => void loadFindings(true));
  byId("project").addEventListener("change", () => void loadMatrix(byId("project").value));
  window.addEventListener("hashchange", route);
  api("/status/session")
    .then((answer) => {
      session = answer;
      showApp();
    })
    .catch(() => showSignIn(""));
}

function switchFindings(verdict) {
  findingsVerdict = verdict;
  findingsNext = null;
  byId("show-violations").setAttribute("aria-pressed", String(verdict === "violation"));
  byId("show-verified").setAttribute("aria-pressed", String(verdict === "verified"));
  void loadFindings(false);
}

start();
