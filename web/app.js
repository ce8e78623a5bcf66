/* app.js — the console's page.  Plain browser JavaScript, no build step,
 * nothing fetched from elsewhere; it talks only to the console's API
 * (SPEC §6).  Every piece of alert or user text goes into the page as a
 * text node (el() below never parses HTML), so a "<script>" in an event
 * field or a note is shown, not run; the server's CSP forbids inline
 * script besides. */
'use strict';

const I18N = {
  zh: {
    title: '反诈预警中心', queue: '预警队列', stats: '统计', logout: '退出', login: '登录',
    user: '用户名', password: '密码', search: '电话号码 / 账号 / 预警编号', rule: '规则',
    since: '起', until: '止', apply: '筛选', csv: '导出 CSV', truth: '导出结果 (truth)',
    severity: '等级', time: '时间', subject: '对象', unit: '单位', state: '状态',
    assignee: '处置人', more: '更多', empty: '没有预警', refresh: '刷新',
    perday: '每日预警（按等级）', outcomes: '处置结果', farate: '各规则误报率',
    attempts: '联系前尝试次数', byunit: '各单位预警数', all: '全部',
    st_new: '新预警', st_assigned: '已指派', st_contacted: '已联系', st_escalated: '已升级（上门）',
    st_closed: '已结案', sv_low: '低', sv_medium: '中', sv_high: '高', sv_critical: '紧急',
    oc_dissuaded: '劝阻成功', oc_unreachable: '无法联系', oc_lost: '已被骗', oc_false_alarm: '误报',
    oc_duplicate: '重复',
    description: '说明', action: '处置要求', fields: '事件字段', steps: '序列步骤',
    evidence: '证据', history: '处置记录', assign_me: '指派给我', assign: '指派',
    contacted: '已联系受害人', escalate: '升级上门', close: '结案', outcome: '结果',
    amount: '金额（元）', note: '备注', attempt: '记录联系尝试', call: '电话', sms: '短信',
    no_answer: '未接', busy: '忙线', refused: '拒接', sent: '已发送', log: '记录',
    reopen: '重新打开', snooze: '静默此对象', snooze_rule: '仅此规则', snooze_all: '所有规则',
    hours: '小时', days: '天', reason: '原因', saved: '已保存', live_on: '实时连接中',
    live_off: '实时连接断开，正在重连…', redis_down: '存储（Redis）不可用：无法保存更改',
    total: '预警总数', protected: '挽回金额（元）', lost: '损失金额（元）',
    escalations: '升级上门', ttfc: '首次联系用时 p50 / p90', close_detail: '关闭',
    bad_login: '用户名或密码错误', system: '系统', routed: '分派到', from: '由', to: '至',
    loading: '加载中…', newalert: '新预警', mine: '我的单位', alerts: '预警', rate: '误报率',
  },
  en: {
    title: 'Anti-fraud centre', queue: 'Queue', stats: 'Statistics', logout: 'Log out', login: 'Log in',
    user: 'User', password: 'Password', search: 'Phone / account / alert id', rule: 'Rule',
    since: 'From', until: 'To', apply: 'Filter', csv: 'Export CSV', truth: 'Export outcomes (truth)',
    severity: 'Severity', time: 'Time', subject: 'Subject', unit: 'Unit', state: 'State',
    assignee: 'Assignee', more: 'More', empty: 'No alerts', refresh: 'Refresh',
    perday: 'Warnings per day by severity', outcomes: 'Outcomes', farate: 'False-alarm rate per rule',
    attempts: 'Attempts before contact', byunit: 'Alerts per unit', all: 'All',
    st_new: 'new', st_assigned: 'assigned', st_contacted: 'contacted', st_escalated: 'escalated (visit)',
    st_closed: 'closed', sv_low: 'low', sv_medium: 'medium', sv_high: 'high', sv_critical: 'critical',
    oc_dissuaded: 'dissuaded', oc_unreachable: 'unreachable', oc_lost: 'lost', oc_false_alarm: 'false alarm',
    oc_duplicate: 'duplicate',
    description: 'Description', action: 'What to do', fields: 'Fields', steps: 'Sequence steps',
    evidence: 'Evidence', history: 'History', assign_me: 'Assign to me', assign: 'Assign',
    contacted: 'Victim contacted', escalate: 'Escalate for a visit', close: 'Close', outcome: 'Outcome',
    amount: 'Amount (yuan)', note: 'Note', attempt: 'Log an attempt', call: 'call', sms: 'SMS',
    no_answer: 'no answer', busy: 'busy', refused: 'refused', sent: 'sent', log: 'Log',
    reopen: 'Reopen', snooze: 'Snooze this subject', snooze_rule: 'this rule', snooze_all: 'all rules',
    hours: 'hours', days: 'days', reason: 'Reason', saved: 'Saved', live_on: 'live',
    live_off: 'live feed lost, reconnecting…', redis_down: 'The store (Redis) is unavailable: changes cannot be saved',
    total: 'Alerts', protected: 'Protected (yuan)', lost: 'Lost (yuan)',
    escalations: 'Escalations', ttfc: 'Time to first contact p50 / p90', close_detail: 'Close',
    bad_login: 'Wrong user or password', system: 'system', routed: 'routed to', from: 'from', to: 'to',
    loading: 'Loading…', newalert: 'new alert', mine: 'my unit', alerts: 'alerts', rate: 'false-alarm rate',
  },
};
const STATES = ['new', 'assigned', 'contacted', 'escalated', 'closed'];
const SEVS = ['low', 'medium', 'high', 'critical'];
const OUTCOMES = ['dissuaded', 'unreachable', 'lost', 'false_alarm', 'duplicate'];
const SEV_COLOR = { low: '#6b7a90', medium: '#c27c0e', high: '#d9480f', critical: '#b3261e' };

let lang = localStorage.getItem('fw-lang') || 'zh';
let me = null;          // {user, role, unit, csrf}
let cursor = null;
let selected = null;    // alert id in the detail panel
let items = new Map();  // alert id -> item shown in the list
let stream = null;

const $ = (id) => document.getElementById(id);
const t = (k) => (I18N[lang][k] !== undefined ? I18N[lang][k] : k);

/* el('div', {class: 'x', onclick: f}, 'text', child...) — text is always text. */
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.className = v;
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) {
    if (c === undefined || c === null || c === false) continue;
    n.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  return n;
}
function svgEl(tag, attrs, text) {
  const n = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = String(text);
  return n;
}
function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
function fmtTime(ms) {
  if (ms === undefined || ms === null) return '';
  const d = new Date(Number(ms));
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function fmtDur(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.round(ms / 1000);
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}
function money(v) { return Number(v || 0).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-US', { maximumFractionDigits: 2 }); }

function banner(text) {
  const b = $('banner');
  if (text) { b.textContent = text; b.hidden = false; } else { b.hidden = true; }
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method === 'POST' && me) opt.headers['X-CSRF-Token'] = me.csrf;
  const r = await fetch(path, opt);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 503) banner(t('redis_down'));
  else if (r.ok) banner(null);
  if (r.status === 401 && path !== '/api/login') { showLogin(); }
  if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
  return data;
}

/* ---- language ---- */
function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  for (const n of document.querySelectorAll('[data-t]')) n.textContent = t(n.dataset.t);
  for (const n of document.querySelectorAll('[data-tp]')) n.placeholder = t(n.dataset.tp);
  $('lang').textContent = lang === 'zh' ? 'English' : '中文';
  fillSelect($('f-state'), STATES, 'st_', $('f-state').value);
  fillSelect($('f-severity'), SEVS, 'sv_', $('f-severity').value);
  if (me) { renderWho(); renderRows(); if (selected) openAlert(selected); }
}
function fillSelect(sel, values, prefix, keep) {
  clear(sel);
  sel.appendChild(el('option', { value: '' }, `${t(prefix === 'st_' ? 'state' : prefix === 'sv_' ? 'severity' : 'unit')}: ${t('all')}`));
  for (const v of values) sel.appendChild(el('option', { value: v }, prefix ? t(prefix + v) : v));
  sel.value = keep || '';
}

/* ---- login ---- */
function showLogin() {
  me = null;
  if (stream) { stream.close(); stream = null; }
  items = new Map(); cursor = null; selected = null;
  clear($('rows')); clear($('detail')).hidden = true; $('live').textContent = '';
  $('login-view').hidden = false;
  $('queue-view').hidden = $('stats-view').hidden = true;
  $('nav').hidden = $('logout').hidden = true;
  $('who').textContent = '';
}
function renderWho() {
  $('who').textContent = `${me.user} · ${me.role}${me.unit ? ' · ' + me.unit : ''}`;
}
async function loggedIn(info) {
  me = info;
  $('login-view').hidden = true;
  $('nav').hidden = $('logout').hidden = false;
  renderWho();
  const units = await api('GET', '/api/units').catch(() => ({ units: [], users: [] }));
  window.fwUnits = units;
  const uSel = $('f-unit'), sSel = $('s-unit');
  if (me.role === 'officer') {
    fillSelect(uSel, [me.unit], null, me.unit); uSel.disabled = true;
    fillSelect(sSel, [me.unit], null, me.unit); sSel.disabled = true;
  } else {
    fillSelect(uSel, units.units.sort(), null, ''); uSel.disabled = false;
    fillSelect(sSel, units.units.sort(), null, ''); sSel.disabled = false;
  }
  showQueue();
  startStream();
}
$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-err').textContent = '';
  try {
    const r = await api('POST', '/api/login', { user: $('login-user').value, password: $('login-pass').value });
    $('login-pass').value = '';
    await loggedIn(r);
  } catch (e) {
    $('login-err').textContent = e.message.startsWith('wrong') ? t('bad_login') : e.message;
  }
});
$('logout').addEventListener('click', async () => { await api('POST', '/api/logout', {}).catch(() => {}); showLogin(); });
$('lang').addEventListener('click', () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('fw-lang', lang); applyLang(); if (!$('stats-view').hidden) loadStats(); });

/* ---- queue ---- */
function filters() {
  const f = {};
  const q = $('f-q').value.trim(); if (q) f.q = q;
  for (const [k, id] of [['state', 'f-state'], ['severity', 'f-severity'], ['unit', 'f-unit'], ['rule', 'f-rule']]) {
    const v = $(id).value.trim(); if (v) f[k] = v;
  }
  const s = $('f-since').value, u = $('f-until').value;
  if (s) f.since = new Date(s + 'T00:00:00').getTime();
  if (u) f.until = new Date(u + 'T23:59:59.999').getTime();
  return f;
}
function qs(f) { return Object.entries(f).map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&'); }
function matches(item, f) {
  if (f.state && item.state !== f.state) return false;
  if (f.severity && item.severity !== f.severity) return false;
  if (f.unit && item.unit !== f.unit) return false;
  if (f.rule && item.rule_id !== f.rule) return false;
  if (f.since && item.detected_ts < f.since) return false;
  if (f.until && item.detected_ts > f.until) return false;
  if (f.q) {
    const vals = [item.alert_id, item.subject, ...Object.values(item.fields || {})];
    for (const s of ((item.evidence || {}).steps || [])) vals.push(...Object.values(s.fields || {}));
    if (!vals.map(String).includes(f.q)) return false;
  }
  return true;
}
async function loadList(more) {
  const f = filters();
  if (!more) { items = new Map(); cursor = null; }
  f.limit = 50;
  if (more && cursor) f.cursor = cursor;
  try {
    const r = await api('GET', '/api/alerts?' + qs(f));
    for (const a of r.alerts) items.set(a.alert_id, a);
    cursor = r.cursor;
    renderRows();
  } catch (e) { $('live').textContent = e.message; }
}
function row(a, fresh) {
  const tr = el('tr', {
    class: [a.severity === 'critical' ? 'crit' : '', a.alert_id === selected ? 'sel' : '', fresh ? 'fresh' : ''].join(' ').trim(),
    'data-id': a.alert_id, onclick: () => openAlert(a.alert_id),
  },
  el('td', {}, el('span', { class: 'sev sev-' + a.severity }, t('sv_' + a.severity))),
  el('td', {}, fmtTime(a.detected_ts)),
  el('td', { title: a.rule_name || '' }, a.rule_id),
  el('td', {}, a.subject),
  el('td', { class: 'hide-s' }, a.unit),
  el('td', {}, el('span', { class: 'st st-' + a.state }, t('st_' + a.state))),
  el('td', { class: 'hide-s' }, a.assignee || ''));
  return tr;
}
function sortedItems() { return [...items.values()].sort((x, y) => (y.detected_ts - x.detected_ts) || (y.alert_id < x.alert_id ? -1 : 1)); }
function renderRows(freshId) {
  const tb = clear($('rows'));
  for (const a of sortedItems()) tb.appendChild(row(a, a.alert_id === freshId));
  $('empty').hidden = items.size > 0;
  $('more').hidden = !cursor;
}
$('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadList(false); });
$('more').addEventListener('click', () => loadList(true));

function startStream() {
  if (stream) stream.close();
  stream = new EventSource('/api/stream');
  stream.addEventListener('hello', () => { $('live').textContent = '● ' + t('live_on'); });
  stream.addEventListener('status', (ev) => {
    const s = JSON.parse(ev.data);
    banner(s.redis === 'down' ? t('redis_down') : null);
  });
  stream.addEventListener('alert', (ev) => {
    const a = JSON.parse(ev.data);
    const known = items.has(a.alert_id);
    if (matches(a, filters())) items.set(a.alert_id, a); else items.delete(a.alert_id);
    renderRows(known ? null : a.alert_id);
    if (a.alert_id === selected) openAlert(selected);
    if (!known) $('live').textContent = `● ${t('live_on')} — ${t('newalert')}: ${a.rule_id} ${a.subject}`;
  });
  stream.onerror = () => { $('live').textContent = '○ ' + t('live_off'); };
}

/* ---- one alert ---- */
function kv(obj) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of Object.entries(obj || {})) {
    dl.appendChild(el('dt', {}, k));
    dl.appendChild(el('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)));
  }
  return dl;
}
function histLine(h) {
  const bits = [fmtTime(h.ts), ' ', h.user === 'system' ? t('system') : h.user, ': '];
  if (h.attempt) bits.push(`${t(h.attempt)} → ${t(h.result)}`);
  else if (h.webhook) bits.push(`webhook ${h.webhook.unit}: ${h.webhook.result} (${h.webhook.attempts}${h.webhook.error ? ', ' + h.webhook.error : ''})`);
  else if (h.snooze) bits.push(`${t('snooze')} (${h.snooze.rule}, ${t('until')} ${fmtTime(h.snooze.until)})`);
  else if (h.from === null || h.from === undefined) bits.push(`${t('st_' + h.to)} · ${t('routed')} ${h.unit || ''}`);
  else bits.push(`${t('st_' + h.from)} → ${t('st_' + h.to)}`);
  if (h.assignee) bits.push(` · ${t('assignee')} ${h.assignee}`);
  if (h.unit && h.from) bits.push(` · ${t('unit')} ${h.unit}`);
  if (h.outcome) bits.push(` · ${t('oc_' + h.outcome)}`);
  if (h.amount !== undefined) bits.push(` · ¥${money(h.amount)}`);
  const li = el('li', {}, bits.join(''));
  if (h.note) li.appendChild(el('div', { class: 'box' }, h.note));
  return li;
}
function select(values, prefix, id) {
  const s = el('select', { id });
  for (const v of values) s.appendChild(el('option', { value: v }, prefix ? t(prefix + v) : v));
  return s;
}
async function act(id, body, msgNode) {
  try {
    await api('POST', `/api/alerts/${encodeURIComponent(id)}/transition`, body);
    msgNode.textContent = t('saved');
    await openAlert(id);
    loadList(false);
  } catch (e) { msgNode.textContent = e.message; }
}
function actions(a) {
  const box = el('div', { class: 'actions' });
  const msg = el('p', { class: 'err', id: 'act-msg' });
  const note = () => el('input', { placeholder: t('note'), class: 'note', maxlength: 2000 });
  const s = a.state, role = me.role;
  if (s === 'new' || s === 'assigned' || s === 'escalated') {
    const fs = el('fieldset', {}, el('legend', {}, t('assign')));
    fs.appendChild(el('button', { type: 'button', id: 'btn-assign-me', onclick: () => act(a.alert_id, { to: 'assigned', assignee: me.user }, msg) }, t('assign_me')));
    if (role !== 'officer' && window.fwUnits) {
      const users = window.fwUnits.users.filter((u) => u.role !== 'officer' || u.unit === a.unit).map((u) => u.user);
      if (users.length) {
        const us = select(users, null, 'assign-user');
        fs.appendChild(us);
        fs.appendChild(el('button', { type: 'button', class: 'ghost', onclick: () => act(a.alert_id, { to: 'assigned', assignee: us.value }, msg) }, t('assign')));
      }
    }
    box.appendChild(fs);
  }
  if (s === 'assigned' || s === 'escalated') {
    const kind = select(['call', 'sms'], '', 'att-kind'), res = select(['no_answer', 'busy', 'refused', 'sent'], '', 'att-result'), n = note();
    box.appendChild(el('fieldset', {}, el('legend', {}, `${t('attempt')} (${a.attempts || 0})`), kind, res, n,
      el('button', { type: 'button', id: 'btn-attempt', onclick: () => act(a.alert_id, { attempt: kind.value, result: res.value, note: n.value || undefined }, msg) }, t('log'))));
    const n2 = note();
    box.appendChild(el('fieldset', {}, el('legend', {}, t('contacted')), n2,
      el('button', { type: 'button', class: 'ok', id: 'btn-contacted', onclick: () => act(a.alert_id, { to: 'contacted', note: n2.value || undefined }, msg) }, t('contacted'))));
  }
  if (s === 'assigned') {
    const units = (window.fwUnits && window.fwUnits.units.length) ? window.fwUnits.units : [a.unit];
    const us = select(units, null, 'esc-unit'); us.value = a.unit;
    const n3 = note();
    box.appendChild(el('fieldset', {}, el('legend', {}, t('escalate')), us, n3,
      el('button', { type: 'button', class: 'warn', id: 'btn-escalate', onclick: () => act(a.alert_id, { to: 'escalated', unit: us.value, note: n3.value || undefined }, msg) }, t('escalate'))));
  }
  if (s !== 'closed') {
    const oc = select(OUTCOMES, 'oc_', 'close-outcome');
    const amt = el('input', { type: 'number', min: 0, step: '0.01', id: 'close-amount', placeholder: t('amount') });
    const n4 = el('input', { id: 'close-note', placeholder: t('note'), maxlength: 2000 });
    const syncAmt = () => { amt.disabled = !(oc.value === 'dissuaded' || oc.value === 'lost'); };
    oc.addEventListener('change', syncAmt); syncAmt();
    box.appendChild(el('fieldset', {}, el('legend', {}, t('close')), oc, amt, n4,
      el('button', { type: 'button', id: 'btn-close', onclick: () => {
        const body = { to: 'closed', outcome: oc.value };
        if (!amt.disabled) body.amount = amt.value === '' ? NaN : Number(amt.value);
        if (n4.value) body.note = n4.value;
        if (Number.isNaN(body.amount)) { msg.textContent = t('amount') + '?'; return; }
        act(a.alert_id, body, msg);
      } }, t('close'))));
  } else if (role === 'admin') {
    box.appendChild(el('fieldset', {}, el('legend', {}, t('reopen')),
      el('button', { type: 'button', class: 'ghost', onclick: () => act(a.alert_id, { to: 'assigned', assignee: me.user }, msg) }, t('reopen'))));
  }
  const scope = el('select', { id: 'snz-scope' }, el('option', { value: a.rule_id }, `${t('snooze_rule')} ${a.rule_id}`), el('option', { value: '*' }, t('snooze_all')));
  const dur = el('select', { id: 'snz-dur' }, ...[[1, 'hours'], [24, 'hours'], [24 * 7, 'days'], [24 * 30, 'days']].map(([h, u]) => el('option', { value: h }, `${u === 'days' ? h / 24 : h} ${t(u)}`)));
  const reason = el('input', { id: 'snz-reason', placeholder: t('reason'), maxlength: 500 });
  box.appendChild(el('fieldset', {}, el('legend', {}, t('snooze') + ' ' + a.subject), scope, dur, reason,
    el('button', { type: 'button', class: 'ghost', id: 'btn-snooze', onclick: async () => {
      try {
        await api('POST', '/api/snoozes', { rule: scope.value, subject: a.subject, until: Date.now() + Number(dur.value) * 3600000, reason: reason.value || undefined, alert_id: a.alert_id });
        msg.textContent = t('saved'); openAlert(a.alert_id);
      } catch (e) { msg.textContent = e.message; }
    } }, t('snooze'))));
  box.appendChild(msg);
  return box;
}
async function openAlert(id) {
  selected = id;
  for (const tr of document.querySelectorAll('#rows tr')) tr.classList.toggle('sel', tr.dataset.id === id);
  const d = $('detail');
  let a;
  try { a = await api('GET', '/api/alerts/' + encodeURIComponent(id)); } catch (e) { clear(d).appendChild(el('p', { class: 'err' }, e.message)); d.hidden = false; return; }
  clear(d); d.hidden = false; d.className = 'card';
  d.appendChild(el('div', { class: 'filters' },
    el('span', { class: 'sev sev-' + a.severity }, t('sv_' + a.severity)),
    el('b', {}, `${a.rule_id} ${a.rule_name || ''}`),
    el('span', { class: 'st st-' + a.state, id: 'detail-state' }, t('st_' + a.state)),
    el('button', { type: 'button', class: 'small ghost', onclick: () => { d.hidden = true; selected = null; renderRows(); } }, t('close_detail'))));
  d.appendChild(kv({ alert_id: a.alert_id, [t('subject')]: a.subject, [t('time')]: fmtTime(a.detected_ts), [t('unit')]: a.unit, [t('assignee')]: a.assignee || '–',
    ...(a.outcome ? { [t('outcome')]: t('oc_' + a.outcome) + (a.amount !== undefined ? ` ¥${money(a.amount)}` : '') } : {}) }));
  if (a.description) d.appendChild(el('div', {}, el('h4', {}, t('description')), el('div', { class: 'box', id: 'detail-description' }, a.description)));
  if (a.action) d.appendChild(el('div', {}, el('h4', {}, t('action')), el('div', { class: 'box action' }, a.action)));
  if (a.fields) d.appendChild(el('div', { id: 'detail-fields' }, el('h4', {}, t('fields')), kv(a.fields)));
  const ev = a.evidence || {};
  if (Array.isArray(ev.steps)) {
    d.appendChild(el('h4', {}, t('steps')));
    d.appendChild(el('div', { class: 'steps' }, ev.steps.map((s, i) => el('div', { class: 'step' },
      el('b', {}, `${i + 1}. ${s.event_id || ''} ${s.ts ? fmtTime(s.ts) : ''}`), kv(s.fields || {})))));
  }
  const rest = Object.fromEntries(Object.entries(ev).filter(([k]) => k !== 'steps'));
  if (Object.keys(rest).length) d.appendChild(el('div', {}, el('h4', {}, t('evidence')), kv(rest)));
  d.appendChild(actions(a));
  d.appendChild(el('h4', {}, t('history')));
  d.appendChild(el('ol', { class: 'hist', id: 'detail-history' }, (a.history || []).map(histLine)));
}

/* ---- CSV ---- */
function csvCell(v) {
  let s = v === undefined || v === null ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;          // no formulas in a spreadsheet
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
async function allFiltered(extra) {
  const f = Object.assign(filters(), extra || {}, { limit: 500 });
  const out = [];
  for (let i = 0; i < 200; i++) {
    const r = await api('GET', '/api/alerts?' + qs(f));
    out.push(...r.alerts);
    if (!r.cursor) break;
    f.cursor = r.cursor;
  }
  return out;
}
function download(name, text, type) {
  const a = el('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.appendChild(a); a.click(); a.remove();
}
$('f-csv').addEventListener('click', async () => {
  const rows = await allFiltered();
  const cols = ['alert_id', 'detected_ts', 'severity', 'rule_id', 'rule_name', 'subject', 'unit', 'state', 'assignee', 'outcome', 'amount', 'attempts', 'fields'];
  const lines = [cols.join(',')].concat(rows.map((a) => cols.map((c) => csvCell(c === 'detected_ts' ? new Date(a[c]).toISOString() : a[c])).join(',')));
  download('alerts.csv', '\ufeff' + lines.join('\r\n') + '\r\n', 'text/csv');
});
$('f-truth').addEventListener('click', async () => {
  const rows = await allFiltered({ state: 'closed' });
  const label = { dissuaded: 'fraud', lost: 'fraud', false_alarm: 'not_fraud' };
  const lines = ['# fraudwatch console outcomes: ALERT_ID<TAB>LABEL (dissuaded, lost: fraud; false_alarm: not_fraud)'];
  for (const a of rows) if (label[a.outcome]) lines.push(`${a.alert_id}\t${label[a.outcome]}`);
  download('outcomes.tsv', lines.join('\n') + '\n', 'text/tab-separated-values');
});

/* ---- stats ---- */
function barChart(container, data, opts) {
  // data: [{label, value, color}] horizontal bars; opts.fmt formats the value
  clear(container);
  const W = 420, rowH = 22, L = 120, H = Math.max(rowH * data.length + 10, 40);
  const max = Math.max(1e-9, ...data.map((d) => d.value), opts.max || 0);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img' });
  data.forEach((d, i) => {
    const y = 5 + i * rowH, w = (W - L - 70) * (d.value / max);
    svg.appendChild(svgEl('text', { x: L - 6, y: y + 14, 'text-anchor': 'end' }, d.label));
    svg.appendChild(svgEl('rect', { x: L, y: y + 3, width: Math.max(w, d.value > 0 ? 1 : 0), height: rowH - 8, fill: d.color || '#1d5fb3' }));
    svg.appendChild(svgEl('text', { x: L + w + 4, y: y + 14 }, opts.fmt ? opts.fmt(d.value) : d.value));
  });
  if (!data.length) svg.appendChild(svgEl('text', { x: 10, y: 20 }, '–'));
  container.appendChild(svg);
}
function dayChart(container, days) {
  clear(container);
  const W = 420, H = 190, B = 30, L = 34, n = Math.max(days.length, 1);
  const tot = days.map((d) => SEVS.reduce((s, k) => s + (d[k] || 0), 0));
  const max = Math.max(1, ...tot);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img' });
  const bw = Math.min(36, Math.max(2, (W - L - 8) / n - 2));
  svg.appendChild(svgEl('text', { x: 2, y: 12 }, max));
  svg.appendChild(svgEl('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#999' }));
  days.forEach((d, i) => {
    let y = H - B;
    const x = L + i * (bw + 2);
    for (const k of SEVS) {
      const h = (H - B - 16) * ((d[k] || 0) / max);
      if (h > 0) { svg.appendChild(svgEl('rect', { x, y: y - h, width: bw, height: h, fill: SEV_COLOR[k] })); y -= h; }
    }
    if (n <= 14 || i % Math.ceil(n / 10) === 0) svg.appendChild(svgEl('text', { x: x + bw / 2, y: H - B + 14, 'text-anchor': 'middle' }, d.day.slice(5)));
  });
  container.appendChild(svg);
  container.appendChild(el('div', { class: 'legend' }, SEVS.map((k) => el('span', {}, el('i', { class: 'c-' + k }), t('sv_' + k)))));
}
async function loadStats() {
  const u = $('s-unit').value;
  let s;
  try { s = await api('GET', '/api/stats' + (u ? '?unit=' + encodeURIComponent(u) : '')); } catch (e) { clear($('cards')).appendChild(el('p', { class: 'err' }, e.message)); return; }
  const tt = s.time_to_first_contact_ms || {};
  const card = (k, v, id) => el('div', { class: 'card', id }, el('span', { class: 'muted' }, t(k)), el('b', {}, v));
  const c = clear($('cards'));
  c.appendChild(card('total', s.total, 'st-total'));
  c.appendChild(card('protected', '¥' + money(s.amount_protected), 'st-protected'));
  c.appendChild(card('lost', '¥' + money(s.amount_lost), 'st-lost'));
  c.appendChild(card('escalations', s.escalations, 'st-escalations'));
  c.appendChild(card('ttfc', `${fmtDur(tt.p50)} / ${fmtDur(tt.p90)}`, 'st-ttfc'));
  dayChart($('c-day'), s.by_day || []);
  barChart($('c-outcome'), OUTCOMES.map((o) => ({ label: t('oc_' + o), value: s.by_outcome[o] || 0, color: o === 'dissuaded' ? '#1b7f3a' : o === 'lost' ? '#b3261e' : '#6b7a90' })), {});
  barChart($('c-rule'), Object.entries(s.by_rule || {}).map(([r, v]) => ({ label: r, value: v.false_alarm_rate || 0 })), { max: 1, fmt: (v) => (v * 100).toFixed(0) + '%' });
  barChart($('c-attempts'), Object.entries(s.attempts_before_contact || {}).sort((a, b) => a[0] - b[0]).map(([k, v]) => ({ label: k, value: v })), {});
  barChart($('c-unit'), Object.entries(s.by_unit || {}).map(([k, v]) => ({ label: k, value: v })), {});
}
$('s-refresh').addEventListener('click', loadStats);
$('s-unit').addEventListener('change', loadStats);

function showQueue() {
  $('queue-view').hidden = false; $('stats-view').hidden = true;
  $('nav-queue').classList.add('on'); $('nav-stats').classList.remove('on');
  loadList(false);
}
function showStats() {
  $('queue-view').hidden = true; $('stats-view').hidden = false;
  $('nav-stats').classList.add('on'); $('nav-queue').classList.remove('on');
  loadStats();
}
$('nav-queue').addEventListener('click', showQueue);
$('nav-stats').addEventListener('click', showStats);

applyLang();
api('GET', '/api/me').then(loggedIn).catch(() => showLogin());
