/**
 * Where `health.url` is probed from (`health.from`): the runner, or the host itself through the
 * run's SSH connection to it. From the host, `http://127.0.0.1:8080/health` means the host's own
 * loopback, the usual place of an app behind a TLS terminator, which the runner cannot reach.
 */
import { isIP } from 'node:net'
import type { HealthSettings } from '../settings.js'
import { sshTargetOf } from '../ssh/ssh-target.js'

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost'])

/** True for a URL whose host is a loopback name or address (`127.0.0.1`, `localhost`, `::1`). */
export function isLoopbackUrl(url: string): boolean {
  let hostname: string
  try {
    hostname = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  } catch {
    return false
  }
  if (LOOPBACK_NAMES.has(hostname)) return true
  if (isIP(hostname) === 4) return hostname.startsWith('127.')
  return hostname === '::1'
}

/**
 * Whether the probe of `url` for `dockerHost` runs from the host: only over `ssh://` (the one
 * kind of remote host the action has a connection to), when `health.from: host`, or by default
 * for a loopback URL. A public URL stays with the runner unless asked: from the host itself it
 * can fail through hairpin NAT.
 */
export function probesFromHost(health: Pick<HealthSettings, 'from'>, dockerHost: string | undefined, url: string): boolean {
  if (!sshTargetOf(dockerHost)) return false
  if (health.from) return health.from === 'host'
  return isLoopbackUrl(url)
}

/**
 * The URL the runner probes to reach `url` as the host sees it: a local port forwarded over SSH
 * to the URL's host and port, and the `Host` header the app expects (unless the config sets one).
 */
export function throughForward(url: string, localPort: number, headers: Record<string, string>): { url: string; headers: Record<string, string> } {
  const original = new URL(url)
  const forwarded = new URL(url)
  forwarded.hostname = '127.0.0.1'
  forwarded.port = String(localPort)
  const hasHost = Object.keys(headers).some((name) => name.toLowerCase() === 'host')
  return { url: forwarded.toString(), headers: hasHost ? headers : { ...headers, Host: original.host } }
}

/** The host and port a URL connects to. */
export function urlEndpoint(url: string): { host: string; port: number } {
  const parsed = new URL(url)
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80 }
}
