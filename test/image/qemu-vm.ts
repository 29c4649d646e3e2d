// The appliance under QEMU (TCG: the host's nested KVM cannot run stock guests) with OVMF Secure Boot
// (Debian's snakeoil keys enrolled), a swtpm TPM 2.0 and the serial console on the test's pipes. Port
// forwards are bound to 127.0.0.1 only, and the guest's user-mode network is restricted: it reaches
// nothing but those forwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { access, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export const ovmfCode = '/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd';
export const ovmfVars = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';

export interface VmOptions {
  readonly disk: string;
  /** The firmware's variable store (a copy per box: boot entries, Secure Boot keys). */
  readonly varsFile: string;
  /** The TPM's state folder (one per box; a new folder is another TPM). */
  readonly tpmDir: string;
  /** Raw images attached as USB sticks (read-only). */
  readonly usb?: readonly string[];
  /** Raw images attached as extra virtio disks (read-only). */
  readonly disks?: readonly string[];
  /** guest port → host port on 127.0.0.1 */
  readonly forwards?: Readonly<Record<number, number>>;
  readonly memoryMiB?: number;
  /** Appends the console output to this file too (to follow a slow boot while it runs). */
  readonly consoleLog?: string;
}

export async function freshVars(file: string): Promise<void> {
  await copyFile(ovmfVars, file);
}

export class Vm {
  readonly started = Date.now();
  #console = '';
  #qemu: ChildProcess | undefined;
  #swtpm: ChildProcess | undefined;
  #exited: Promise<number | null> | undefined;
  #waiters = new Set<() => void>();

  private readonly options: VmOptions;

  private constructor(options: VmOptions) {
    this.options = options;
  }

  static async boot(options: VmOptions): Promise<Vm> {
    const vm = new Vm(options);
    await vm.#start();
    return vm;
  }

  get console(): string {
    return this.#console;
  }

  /** Seconds since the VM was started. */
  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  async #start(): Promise<void> {
    const o = this.options;
    await mkdir(o.tpmDir, { recursive: true });
    const sock = join(o.tpmDir, 'swtpm.sock');
    this.#swtpm = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--tpmstate',
        `dir=${o.tpmDir}`,
        '--ctrl',
        `type=unixio,path=${sock}`,
        '--flags',
        'startup-clear',
        '--terminate',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        await access(sock);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const fwd = Object.entries(o.forwards ?? {})
      .map(([guest, host]) => `,hostfwd=tcp:127.0.0.1:${host}-:${guest}`)
      .join('');
    const args = [
      '-machine',
      'q35,accel=tcg,smm=on',
      '-cpu',
      'max',
      '-smp',
      '2',
      '-m',
      String(o.memoryMiB ?? 1536),
      '-global',
      'driver=cfi.pflash01,property=secure,value=on',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${ovmfCode}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${o.varsFile}`,
      '-drive',
      `if=virtio,format=raw,file=${o.disk}`,
      '-chardev',
      `socket,id=chrtpm,path=${sock}`,
      '-tpmdev',
      'emulator,id=tpm0,chardev=chrtpm',
      '-device',
      'tpm-tis,tpmdev=tpm0',
      '-netdev',
      `user,id=n0,restrict=on${fwd}`,
      '-device',
      'virtio-net-pci,netdev=n0',
      '-device',
      'qemu-xhci,id=xhci',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-monitor',
      'none',
    ];
    (o.usb ?? []).forEach((img, i) => {
      args.push('-drive', `if=none,id=usb${i},format=raw,readonly=on,file=${img}`, '-device', `usb-storage,bus=xhci.0,drive=usb${i}`);
    });
    for (const img of o.disks ?? []) args.push('-drive', `if=virtio,format=raw,readonly=on,file=${img}`);
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#qemu = qemu;
    this.#exited = once(qemu, 'exit').then(([code]) => code as number | null);
    const onData = (b: Buffer): void => {
      this.#console += b.toString('utf8');
      if (o.consoleLog !== undefined) appendFileSync(o.consoleLog, b);
      for (const w of this.#waiters) w();
    };
    qemu.stdout.on('data', onData);
    qemu.stderr.on('data', onData);
  }

  get running(): boolean {
    return this.#qemu !== undefined && this.#qemu.exitCode === null && this.#qemu.signalCode === null;
  }

  /** Waits until the console output after `from` matches; returns the match. */
  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#console.slice(from).match(re);
      if (m !== null) return m;
      if (!this.running) throw new Error(`VM exited before ${re} appeared; console tail:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${re}; console tail:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 1000));
        this.#waiters.add(wake);
      });
    }
  }

  tail(chars = 3000): string {
    return this.#console.slice(-chars);
  }

  type(text: string): void {
    this.#qemu?.stdin?.write(text);
  }

  /** Signs in on the serial console as root. */
  async login(password: string, timeoutMs: number, from = 0): Promise<void> {
    await this.waitFor(/login: $/m, timeoutMs, from);
    this.type('root\n');
    const at = this.#console.length;
    await this.waitFor(/Password: ?$/m, 30_000, at);
    this.type(`${password}\n`);
    await this.waitFor(/# $/m, 60_000, at);
    // Plain output: no colours, no pager, no line editing surprises.
    await this.sh('export SYSTEMD_PAGER= SYSTEMD_COLORS=0 TERM=dumb; stty -echo cols 250', 30_000);
  }

  /** Runs a shell command on the console; resolves with its exit status and output. */
  async sh(command: string, timeoutMs: number): Promise<{ code: number; out: string }> {
    const tag = `E${Math.random().toString(36).slice(2, 10)}`;
    const at = this.#console.length;
    this.type(`echo ${tag}-B; ${command}; echo ${tag}-RC=$?\n`);
    const m = await this.waitFor(new RegExp(`${tag}-B\\r?\\n([\\s\\S]*?)${tag}-RC=(\\d+)`), timeoutMs, at);
    return { code: Number(m[2]), out: (m[1] ?? '').replace(/\r/g, '') };
  }

  /** Types a file onto the box (base64 over the console), in small chunks the tty keeps up with. */
  async putFile(path: string, content: string | Buffer): Promise<void> {
    const b64 = Buffer.from(content).toString('base64');
    await this.sh(`rm -f ${path}.b64`, 30_000);
    for (let i = 0; i < b64.length; i += 600) {
      await this.sh(`echo ${b64.slice(i, i + 600)} >> ${path}.b64`, 30_000);
    }
    const r = await this.sh(`base64 -d ${path}.b64 > ${path} && rm ${path}.b64`, 30_000);
    if (r.code !== 0) throw new Error(`could not write ${path} on the box: ${r.out}`);
  }

  async waitExit(timeoutMs: number): Promise<number | null> {
    if (this.#exited === undefined) return null;
    return Promise.race([
      this.#exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('VM did not exit')), timeoutMs)),
    ]);
  }

  /** Powers the box off from the console (clean unmounts) and waits for QEMU to exit. */
  async poweroff(timeoutMs = 180_000): Promise<void> {
    this.type('systemctl poweroff\n');
    try {
      await this.waitExit(timeoutMs);
    } finally {
      await this.kill();
    }
  }

  async kill(): Promise<void> {
    for (const child of [this.#qemu, this.#swtpm]) {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit').catch(() => undefined);
      }
    }
  }
}
