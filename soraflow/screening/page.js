// The review page: draws the review the render flow wrote (GET /api/state, every second), plays
// the current cut and every take (GET /media/..., ranged), and sends a decision (POST
// /api/decision). Text from the review is always set as text, never as HTML.
"use strict";
(() => {
  const token = new URLSearchParams(location.search).get("token") || "";
  const withToken = (path) => (token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path);
  const $ = (id) => document.getElementById(id);

  let review = null; // the review as last drawn
  let drawn = ""; // ... and its JSON, to draw again only when it changed
  let canDecide = false;
  let answered = 0; // the last round this page sent a decision for: no second one until the next round
  let sentNote = ""; // what the page said when that decision was taken
  const FINAL = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"];
  let sending = false;
  const selected = new Map(); // shot -> the take the creator picked
  const shotViews = new Map(); // shot -> {node, takes, box, change, seed}
  const takeViews = new Map(); // "shot/take" -> {node, media, screen, info}

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined && child !== "") node.append(child);
    return node;
  }

  // Puts ``nodes`` in ``container``, moving none that is already in place: a video taken out of
  // the page stops playing, so takes already shown stay where they are as new ones arrive.
  function sync(container, nodes) {
    const now = [...container.children];
    if (now.length <= nodes.length && now.every((node, i) => node === nodes[i])) container.append(...nodes.slice(now.length));
    else container.replaceChildren(...nodes);
  }

  const money = (value) => "$" + Number(value).toFixed(2);

  function setStatus(text, busy) {
    $("status").textContent = text || "";
    $("status").classList.toggle("busy", Boolean(busy));
  }

  function setProblems(lines) {
    $("problems").replaceChildren(...lines.map((line) => el("li", {}, line)));
  }

  function updateButtons() {
    $("send").disabled = $("approve").disabled = !canDecide || sending;
  }

  async function poll() {
    try {
      const answer = await fetch(withToken("/api/state"), { cache: "no-store" });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      show(await answer.json());
    } catch (err) {
      setStatus("The review page's server does not answer (" + err.message + "); trying again…");
    } finally {
      setTimeout(poll, 1000);
    }
  }

  function show(data) {
    if (!data.review) {
      $("decision").hidden = true;
      canDecide = false;
      setStatus(data.error);
      return;
    }
    const text = JSON.stringify(data.review);
    if (text !== drawn) {
      drawn = text;
      review = data.review;
      draw(review);
    }
    // A poll already under way when a decision was sent still says the run waits: only a later
    // round can be decided again (the run writes the new round before it stops for it).
    canDecide = data.can_decide && review.round > answered;
    const run = data.run ? " (" + (data.run.name || data.run.type) + ")" : "";
    $("summary").textContent =
      "Review round " + review.round + " · spent " + money(review.spent_usd) + " on every take so far" +
      (review.flow_run_id ? " · flow run " + review.flow_run_id + run : "");
    if (!sending) {
      const over = Boolean(data.run) && FINAL.includes(data.run.type);
      if (canDecide) setStatus("The run waits for your decision.");
      else if (review.round <= answered && !(over && data.run.type !== "COMPLETED")) {
        setStatus(sentNote + (over ? " The run is " + data.run.name + "." : ""), !over);
      } else setStatus(data.why_not, !over && Boolean(data.run));
    }
    updateButtons();
  }

  function draw(review) {
    document.title = review.title + " · soraflow review";
    $("title").textContent = review.title;
    $("decision").hidden = false;
    const film = $("film");
    $("film-section").hidden = !review.film_uri;
    const filmSrc = review.film_uri ? withToken("/media/film?v=" + encodeURIComponent(review.film_uri)) : "";
    if (film.getAttribute("src") !== filmSrc) {
      if (filmSrc) film.setAttribute("src", filmSrc);
      else film.removeAttribute("src");
    }
    const notices = [];
    const shots = [];
    for (const shot of review.shots) {
      selected.set(shot.shot, shot.chosen); // a new review: what the film uses now
      const view = shotView(shot);
      sync(view.takes, shot.takes.map((take) => takeView(shot, take).node));
      shots.push(view.node);
      for (const take of shot.takes) if (take.error) notices.push("Shot " + shot.shot + ", take " + take.take + ": " + take.error);
    }
    sync($("shots"), shots);
    $("notices").replaceChildren(...notices.map((line) => el("li", {}, line)));
  }

  function shotView(shot) {
    let view = shotViews.get(shot.shot);
    if (!view) {
      const box = el("input", { type: "checkbox", class: "retake-box" });
      const change = el("textarea", { class: "retake-change", maxlength: "1000", placeholder: "What to change, e.g. the boat is red" });
      const seed = el("input", { type: "number", class: "retake-seed", min: "0", max: "4294967295", step: "1", placeholder: "seed (optional)" });
      change.addEventListener("input", () => { box.checked = change.value.trim() !== "" || box.checked; });
      seed.addEventListener("input", () => { box.checked = seed.value !== "" || box.checked; });
      const takes = el("div", { class: "takes" });
      const heading = el("h3", {}, "Shot " + shot.shot);
      const retake = el("div", { class: "retake" }, el("label", {}, box, " Ask for a retake"), change, seed);
      view = { node: el("section", { class: "shot", "data-shot": shot.shot }, heading, takes, retake), takes, box, change, seed };
      shotViews.set(shot.shot, view);
    }
    return view;
  }

  function takeView(shot, take) {
    const id = shot.shot + "/" + take.take;
    const media = take.storage_uri || "";
    let view = takeViews.get(id);
    if (!view || view.media !== media) {
      const screen = media
        ? el("video", {
            controls: true, preload: "metadata", playsinline: true,
            src: withToken("/media/takes/" + encodeURIComponent(shot.shot) + "/" + take.take + "?v=" + encodeURIComponent(take.clip_key)),
          })
        : el("div", { class: "missing" });
      if (media) screen.muted = true; // takes side by side: sound on at the creator's word
      const info = el("div");
      view = { node: el("article", { class: "take", "data-shot": shot.shot, "data-take": String(take.take) }, screen, info), media, screen, info };
      takeViews.set(id, view);
    }
    if (!media) view.screen.textContent = "Not stored yet (" + take.state + ")";
    const chosen = take.take === shot.chosen;
    view.node.classList.toggle("chosen", chosen);
    const keep = el("input", { type: "radio", name: "keep-" + shot.shot, value: String(take.take), class: "keep", disabled: !media });
    keep.checked = selected.get(shot.shot) === take.take;
    keep.addEventListener("change", () => selected.set(shot.shot, take.take));
    const facts = [["model", take.model + " (" + take.profile + ")"], ["seconds", String(take.seconds)], ["cost", money(take.price_usd)], ["state", take.state]];
    if (take.seed !== null && take.seed !== undefined) facts.push(["seed", String(take.seed)]);
    view.info.replaceChildren(
      el("h4", {}, "Take " + take.take, chosen ? el("span", { class: "badge" }, "in the film") : ""),
      el("dl", {}, ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
      take.prompt ? el("p", { class: "prompt" }, take.prompt) : "",
      take.error ? el("p", { class: "error" }, take.error) : "",
      el("label", {}, keep, " Keep this take"),
    );
    return view;
  }

  function decision(approve) {
    const shots = [];
    for (const shot of review.shots) {
      const said = { shot: shot.shot };
      const keep = selected.get(shot.shot);
      if (keep !== undefined && keep !== shot.chosen) said.keep = keep;
      const view = shotViews.get(shot.shot);
      if (!approve && view.box.checked) {
        said.retake = { prompt_change: view.change.value.trim() };
        if (view.seed.value !== "") said.retake.seed = Number(view.seed.value);
      }
      if (said.keep !== undefined || said.retake) shots.push(said);
    }
    return { approve, shots };
  }

  async function send(approve) {
    setProblems([]);
    if (approve && [...shotViews.values()].some((view) => view.box.checked)) {
      setProblems(["Approving stitches the chosen takes: untick the retakes, or send the decision first."]);
      return;
    }
    const body = decision(approve);
    if (!approve && body.shots.length === 0) {
      setProblems(["Choose another take or ask for a retake first (or approve)."]);
      return;
    }
    sending = true;
    updateButtons();
    setStatus("Sending the decision…", true);
    try {
      const answer = await fetch("/api/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token, "X-Review-Round": String(review.round) },
        body: JSON.stringify(body),
      });
      const data = await answer.json().catch(() => ({}));
      if (answer.status === 202) {
        answered = review.round;
        sentNote = approve ? "Approved: the run stitches the film." : "Sent: the run resumes. New takes appear here as they are stored.";
        for (const view of shotViews.values()) { view.box.checked = false; view.change.value = ""; view.seed.value = ""; }
        canDecide = false;
        setStatus(sentNote, true);
      } else if (answer.status === 422 && data.problems) {
        setProblems(data.problems.map((p) => (p.field ? p.field + ": " : "") + p.message));
        setStatus("The decision was not sent.");
      } else {
        setProblems([data.error || "The review page's server answered HTTP " + answer.status + "."]);
        setStatus("The decision was not sent.");
      }
    } catch (err) {
      setProblems(["The decision could not be sent: " + err.message]);
    } finally {
      sending = false;
      updateButtons();
    }
  }

  $("decision").addEventListener("submit", (event) => { event.preventDefault(); send(false); });
  $("approve").addEventListener("click", () => send(true));
  poll();
})();
