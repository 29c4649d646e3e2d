// preact + htm as plain ES modules served by the box: `html` templates render text as text (never
// as HTML), so patient data can never become markup.
import { h, render } from '../vendor/preact.module.js';
import htm from '../vendor/htm.module.js';

export const html = htm.bind(h);
export { render };
export { useCallback, useEffect, useRef, useState } from '../vendor/hooks.module.js';
