// changepager timeline page script. The page works without it (server-rendered HTML and SVG, details through
// :target); this adds what only the browser can do: keeping the selected alert open, and the live refresh. It
// never builds markup from data: a refresh fetches the page's own server-rendered (escaped) HTML from the same
// origin and swaps the timeline section. Times stay as the server wrote them: UTC, on a 24-hour clock.

const main = document.getElementById('main');

/** "11:20 UTC": the clock the rest of the page is written in. */
function utcClock(at) {
  return `${at.toISOString().slice(11, 16)} UTC`;
}

function selectedId() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return '';
  }
}

/** Opens the details named by the URL fragment and marks its bar or marker; `focus` after a user's click. */
function applySelection(focus) {
  for (const el of document.querySelectorAll('.detail.is-open')) el.classList.remove('is-open');
  for (const el of document.querySelectorAll('.chart .is-selected')) el.classList.remove('is-selected');
  const id = selectedId();
  const panel = id ? document.getElementById(id) : null;
  if (!panel?.classList.contains('detail')) return;
  panel.classList.add('is-open');
  const key = panel.getAttribute('data-alert') || panel.getAttribute('data-deploy') || '';
  const selector = `.chart a[data-alert="${CSS.escape(key)}"], .chart a[data-deploy="${CSS.escape(key)}"]`;
  const marked = [...document.querySelectorAll(selector)];
  for (const el of marked) el.classList.add('is-selected');
  // Keep what was clicked in sight: the panel goes to the side of the screen away from it.
  const box = marked[0]?.getBoundingClientRect();
  panel.classList.toggle('dock-left', box !== undefined && box.left + box.width / 2 > window.innerWidth / 2);
  if (focus) panel.focus({ preventScroll: true });
}

function closeSelection() {
  const id = selectedId();
  history.replaceState(null, '', location.pathname + location.search);
  applySelection(false);
  // Back to what opened it, for keyboard users.
  const key = id.replace(/^(alert|deploy)-/, '');
  document
    .querySelector(`.chart a[data-alert="${CSS.escape(key)}"], .chart a[data-deploy="${CSS.escape(key)}"]`)
    ?.focus();
}

function wireSelection() {
  window.addEventListener('hashchange', () => applySelection(true));
  document.addEventListener('click', (event) => {
    const close = event.target instanceof Element ? event.target.closest('.detail .close') : null;
    if (!close) return;
    event.preventDefault();
    closeSelection();
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.querySelector('.detail.is-open')) closeSelection();
  });
  applySelection(false);
}

function setStatus(text) {
  const el = document.querySelector('[data-refresh-status]');
  if (el) el.textContent = text;
}

/**
 * Live refresh: polls GET /v1/timeline (same range, same filters) for its revision, and when it changed, or
 * when a range that follows now has moved on, fetches this page again and swaps the timeline section. The
 * range stays in the URL, so nothing the viewer chose is lost.
 */
function wireRefresh() {
  const url = main?.getAttribute('data-refresh-url');
  if (!url) return;
  const every = Math.max(2, Number(main.getAttribute('data-refresh-seconds')) || 10) * 1000;
  const live = main.getAttribute('data-live') === 'true';
  let revision = document.getElementById('timeline')?.getAttribute('data-revision');
  let renderedAt = Date.now();
  let timer;
  let inFlight = false;

  async function rerender() {
    const res = await fetch(location.pathname + location.search, {
      headers: { Accept: 'text/html' },
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (!res.ok) throw new Error(`page answered ${res.status}`);
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const next = doc.getElementById('timeline');
    const current = document.getElementById('timeline');
    if (!next || !current) return;
    const scroller = document.querySelector('.chart-scroll');
    const scrollLeft = scroller ? scroller.scrollLeft : 0;
    const adopted = document.adoptNode(next);
    current.replaceWith(adopted);
    const nextScroller = document.querySelector('.chart-scroll');
    if (nextScroller) nextScroller.scrollLeft = scrollLeft;
    applySelection(false);
    revision = adopted.getAttribute('data-revision');
    renderedAt = Date.now();
  }

  async function poll() {
    timer = undefined;
    if (document.hidden || inFlight) return; // visibilitychange polls again
    inFlight = true;
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (res.status === 401) {
        setStatus('Signed out: reload the page to sign in again.');
        inFlight = false;
        return; // stop polling
      }
      if (!res.ok) throw new Error(`refresh answered ${res.status}`);
      const data = await res.json();
      const changed = data.revision !== revision;
      if (changed || (live && Date.now() - renderedAt >= 60_000)) {
        await rerender();
        if (changed) setStatus(`Updated at ${utcClock(new Date())}.`);
      }
    } catch (err) {
      setStatus(`Could not refresh (${err instanceof Error ? err.message : 'network error'}); trying again.`);
    }
    inFlight = false;
    timer = setTimeout(poll, every);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && timer === undefined && !inFlight) poll();
  });
  timer = setTimeout(poll, every);
}

/**
 * A chart wider than its box (phones) scrolls sideways; start it where the latest deploy or alert is, which
 * is what someone opening the page after a page wants to see.
 */
function scrollToLatest() {
  const scroller = document.querySelector('.chart-scroll');
  const svg = scroller?.querySelector('svg.chart');
  if (!scroller || !svg || scroller.scrollWidth <= scroller.clientWidth) return;
  const units = svg.viewBox.baseVal.width || 1;
  let right = 0;
  for (const el of svg.querySelectorAll('a.alert rect.bar, a.deploy .marker')) {
    const box = el.getBBox();
    right = Math.max(right, box.x + box.width);
  }
  const px = (right * svg.clientWidth) / units;
  scroller.scrollLeft = Math.max(0, px - scroller.clientWidth + 48);
}

scrollToLatest();
wireSelection();
wireRefresh();
