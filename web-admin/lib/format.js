// Small formatters; every value ends up as text in the page.
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function time(iso) {
  if (iso === null || iso === undefined) return 'never';
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** DICOM DA + TM → "2026-12-07 14:30". */
export function dicomDateTime(da, tm) {
  const d = typeof da === 'string' && da.length === 8 ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6)}` : da || '';
  const t = typeof tm === 'string' && tm.length >= 4 ? `${tm.slice(0, 2)}:${tm.slice(2, 4)}` : tm || '';
  return `${d} ${t}`.trim();
}

/** A DICOM person name (Family^Given^Middle^Prefix^Suffix) as one line of text. */
export function personName(pn) {
  if (typeof pn !== 'string') return '';
  const [family = '', given = '', middle = ''] = pn.split('=')[0].split('^');
  return [family, [given, middle].filter(Boolean).join(' ')].filter(Boolean).join(', ');
}
