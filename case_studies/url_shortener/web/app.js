// The keel shortener's web page: index.html (shorten a URL, copy the result) and stats.html
// (clicks, clicks per day, referrers), both talking to the JSON API under /api/v1/.
//
// No framework and no outside code. The pages run under Content-Security-Policy:
// default-src 'self', so everything here is DOM calls on elements from the HTML: no inline
// script or style, no innerHTML (text from the API only ever goes through textContent).
'use strict';

const API = '/api/v1/links';
const STATS_REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);

function show(element, visible) {
  element.hidden = !visible;
}

// The API's error message ({"error": {"code", "message"}}), or a generic one for other bodies.
async function errorMessage(response) {
  let message = `The request failed (HTTP ${response.status}).`;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === 'string') message = body.error.message;
  } catch (ignored) {
    // Not JSON (a proxy's page, say): keep the generic message.
  }
  const retryAfter = response.headers.get('Retry-After');
  if (response.status === 429 && retryAfter) message += ` Try again in ${retryAfter} s.`;
  return message;
}

// Only http(s) URLs become links (the API accepts nothing else, but a page should not trust
// that).
function setLink(anchor, url) {
  anchor.textContent = url;
  if (/^https?:\/\//i.test(url)) anchor.href = url;
  else anchor.removeAttribute('href');
}

function statsPath(code) {
  return `/${encodeURIComponent(code)}+`;
}

// ---- index.html: shorten and copy ----------------------------------------------------------

// Copies the short link: the Clipboard API where the page is a secure context (https or
// localhost), otherwise the older selection + execCommand('copy'). Returns whether it worked.
async function copyText(input) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(input.value);
      return true;
    } catch (ignored) {
      // Denied (no permission, no focus): fall through to the selection.
    }
  }
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch (ignored) {
    return false;
  }
}

function expiryToRfc3339(value) {
  if (!value) return null;
  const at = new Date(value);  // datetime-local: the user's time zone
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

function initShortenPage() {
  const form = $('shorten-form');
  const button = $('shorten');
  const error = $('error');
  const result = $('result');

  function showError(message) {
    error.textContent = message;
    show(error, true);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(error, false);
    const request = {url: $('url').value.trim()};
    const alias = $('alias').value.trim();
    if (alias) request.alias = alias;
    const expiresAt = expiryToRfc3339($('expires').value);
    if (expiresAt === undefined) {
      showError('The expiry date is not a valid date and time.');
      return;
    }
    if (expiresAt) request.expires_at = expiresAt;

    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(API, {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
        body: JSON.stringify(request),
      });
      if (!response.ok) {
        showError(await errorMessage(response));
        return;
      }
      showLink(await response.json(), response.status === 200);
    } catch (failure) {
      showError(`The shortener could not be reached (${failure.message}).`);
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  function showLink(link, existing) {
    $('short-url').value = link.short_url;
    setLink($('long-url'), link.url);
    $('stats-link').href = statsPath(link.code);
    $('copy-status').textContent = '';
    show($('result-note'), existing);
    show(result, true);
    $('short-url').focus();
    $('short-url').select();
  }

  $('copy').addEventListener('click', async () => {
    const copied = await copyText($('short-url'));
    $('copy-status').textContent =
        copied ? 'Copied to the clipboard.' : 'Press Ctrl+C (⌘C on a Mac) to copy the selected link.';
  });
}

// ---- stats.html: numbers, chart, referrers --------------------------------------------------

const SVG_NS = 'http://www.w3.org/2000/svg';
const DAY_MS = 24 * 60 * 60 * 1000;
const MIN_DAYS = 14;  // a short history still gets a readable time axis
const MAX_DAYS = 90;

function svgElement(name, attributes = {}, text = undefined) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const dayOf = (date) => Date.parse(`${date}T00:00:00Z`);
const shortDate = (ms) =>
    new Date(ms).toLocaleDateString(undefined, {month: 'short', day: 'numeric', timeZone: 'UTC'});
const plural = (n, one, many) => (n === 1 ? one : many);

// Every day (UTC, as the API counts them) from the first click or MIN_DAYS ago, whichever is
// earlier, to today, at most MAX_DAYS; days without clicks count 0.
function dailySeries(daily) {
  const counts = new Map(daily.map((d) => [d.date, d.clicks]));
  const known = daily.map((d) => dayOf(d.date)).filter((ms) => !Number.isNaN(ms));
  const end = Math.max(dayOf(isoDate(Date.now())), ...known);
  let start = Math.min(end - (MIN_DAYS - 1) * DAY_MS, ...known);
  start = Math.max(start, end - (MAX_DAYS - 1) * DAY_MS);
  const series = [];
  for (let day = start; day <= end; day += DAY_MS) {
    series.push({day, clicks: counts.get(isoDate(day)) || 0});
  }
  return series;
}

// Integer ticks for the value axis: 0, the top, and the middle when it is a whole number.
function ticksUpTo(top) {
  return top % 2 === 0 && top > 2 ? [0, top / 2, top] : [0, top];
}

function drawDailyChart(figure, daily) {
  const series = dailySeries(daily);
  const width = 640, height = 220;
  const left = 40, right = 10, top = 12, bottom = 30;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const maxClicks = Math.max(1, ...series.map((d) => d.clicks));
  const total = series.reduce((sum, d) => sum + d.clicks, 0);
  const busiest = series.reduce((best, d) => (d.clicks > best.clicks ? d : best), series[0]);
  const y = (clicks) => top + plotHeight - (clicks / maxClicks) * plotHeight;
  const slot = plotWidth / series.length;

  const chart = svgElement('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-labelledby': 'daily-chart-title daily-chart-desc',
    class: 'daily',
  });
  chart.append(svgElement('title', {id: 'daily-chart-title'}, 'Clicks per day'));
  chart.append(svgElement('desc', {id: 'daily-chart-desc'},
      `${total} ${plural(total, 'click', 'clicks')} from ${isoDate(series[0].day)} to ` +
      `${isoDate(series[series.length - 1].day)}` +
      (total > 0 ? `; most on ${isoDate(busiest.day)} (${busiest.clicks}).` : '.')));

  for (const tick of ticksUpTo(maxClicks)) {
    chart.append(svgElement('line', {class: 'grid', x1: left, x2: width - right, y1: y(tick), y2: y(tick)}));
    chart.append(svgElement('text', {class: 'tick', x: left - 6, y: y(tick) + 4, 'text-anchor': 'end'},
                            String(tick)));
  }
  series.forEach((d, i) => {
    if (d.clicks === 0) return;
    const bar = svgElement('rect', {
      class: 'bar',
      x: left + i * slot + slot * 0.15,
      y: y(d.clicks),
      width: slot * 0.7,
      height: top + plotHeight - y(d.clicks),
      'data-date': isoDate(d.day),
      'data-clicks': d.clicks,
    });
    bar.append(svgElement('title', {}, `${isoDate(d.day)}: ${d.clicks} ${plural(d.clicks, 'click', 'clicks')}`));
    chart.append(bar);
  });
  const labelled = [0, Math.floor((series.length - 1) / 2), series.length - 1];
  for (const i of new Set(labelled)) {
    chart.append(svgElement('text', {
      class: 'tick',
      x: left + i * slot + slot / 2,
      y: height - 10,
      'text-anchor': i === 0 ? 'start' : i === series.length - 1 ? 'end' : 'middle',
    }, shortDate(series[i].day)));
  }
  figure.replaceChildren(chart);
}

function fillReferrers(referrers) {
  const rows = referrers.map((r) => {
    const row = document.createElement('tr');
    const name = document.createElement('td');
    name.textContent = r.referrer;
    const clicks = document.createElement('td');
    clicks.className = 'num';
    clicks.textContent = String(r.clicks);
    row.append(name, clicks);
    return row;
  });
  $('referrers').tBodies[0].replaceChildren(...rows);
  show($('referrers'), rows.length > 0);
  show($('no-referrers'), rows.length === 0);
}

function formatTime(element, rfc3339) {
  element.dateTime = rfc3339;
  element.textContent = new Date(rfc3339).toLocaleString();
}

function showStats(link) {
  document.title = `Stats for ${link.code} · keel shortener`;
  setLink($('short-url'), link.short_url);
  setLink($('target'), link.url);
  formatTime($('created'), link.created_at);
  if (link.expires_at) {
    const expires = document.createElement('time');
    formatTime(expires, link.expires_at);
    $('expires').replaceChildren(expires);
  } else {
    $('expires').textContent = 'never';
  }
  $('clicks').textContent = String(link.clicks);
  $('clicks-unit').textContent = plural(link.clicks, 'click', 'clicks');
  drawDailyChart($('daily-chart'), link.daily);
  fillReferrers(link.referrers);
  formatTime($('updated'), new Date().toISOString());
  show($('stats'), true);
}

function initStatsPage() {
  const code = decodeURIComponent(location.pathname.slice(1).replace(/\+$/, ''));

  async function refresh() {
    try {
      const response = await fetch(`${API}/${encodeURIComponent(code)}`,
                                   {headers: {'Accept': 'application/json'}});
      show($('loading'), false);
      if (response.status === 404) {
        $('missing-code').textContent = code;
        show($('stats'), false);
        show($('not-found'), true);
        return;  // nothing more to refresh
      }
      if (!response.ok) throw new Error(await errorMessage(response));
      show($('error'), false);
      showStats(await response.json());
    } catch (failure) {
      show($('loading'), false);
      $('error').textContent = `Could not load the stats: ${failure.message}`;
      show($('error'), true);
    }
    setTimeout(refreshWhenVisible, STATS_REFRESH_MS);
  }

  // A tab in the background does not poll; it catches up when shown again.
  function refreshWhenVisible() {
    if (document.visibilityState === 'visible') {
      refresh();
    } else {
      document.addEventListener('visibilitychange', refreshWhenVisible, {once: true});
    }
  }

  refresh();
}

if (document.body.dataset.page === 'shorten') initShortenPage();
if (document.body.dataset.page === 'stats') initStatsPage();
