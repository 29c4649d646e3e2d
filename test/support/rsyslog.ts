// rsyslogd (Debian's, with gnutls) as the central audit collector: syslog over TLS on loopback with
// mutual authentication (x509/certvalid: the client certificate must chain to the CA), every message
// written raw, one per line, to a file.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './processes.ts';
import { waitForPort } from './wait.ts';

export interface RsyslogOptions {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly port?: number;
}

export class Rsyslog {
  readonly port: number;
  readonly outFile: string;
  readonly #conf: string;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  stderr = '';

  private constructor(o: RsyslogOptions & { port: number }) {
    this.port = o.port;
    this.#dir = o.dir;
    mkdirSync(o.dir, { recursive: true });
    this.outFile = join(o.dir, 'audit.log');
    this.#conf = join(o.dir, 'rsyslog.conf');
    writeFileSync(
      this.#conf,
      `global(
  workDirectory="${o.dir}"
  maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="${o.caFile}"
  DefaultNetstreamDriverCertFile="${o.certFile}"
  DefaultNetstreamDriverKeyFile="${o.keyFile}"
)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.Authmode="x509/certvalid")
input(type="imtcp" port="${o.port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="${this.outFile}" template="raw" flushOnTXEnd="on" asyncWriting="off")
`,
    );
  }

  static async start(o: RsyslogOptions): Promise<Rsyslog> {
    const r = new Rsyslog({ ...o, port: o.port ?? (await freePort()) });
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    const child = spawn('/usr/sbin/rsyslogd', ['-n', '-f', this.#conf, '-i', join(this.#dir, 'rsyslogd.pid')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.#child = child;
    await waitForPort(this.port, {
      timeoutMs: 15_000,
      exited: () => (child.exitCode === null ? undefined : `rsyslogd exited: ${this.stderr}`),
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null) return;
    this.#child = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
