/**
 * Runs the application under test on a COMMITTED version of the runtime instead of the working
 * tree: `git archive <commit>` of lib/, topology/ and examples/ (+ package.json, tsconfig.json) into
 * `.cache/chaos/code/<sha>/`, with the repository's node_modules linked in; the harness' apps
 * (test/eos/ and test/chaos/apps/) are copied from the working tree, so the
 * harness' tracing is the same whatever runtime it runs. The working tree is
 * shared with people editing lib/ at the same moment; a fault run must say exactly which runtime
 * it tested.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdir, rename, rm, symlink } from 'node:fs/promises'
import path from 'node:path'
import { ROOT } from './instances.js'

/** Where the app of a code version lives: its root (the child's cwd) and its test/eos/app.ts. */
export interface CodeVersion {
  /** `worktree`, or the full commit sha. */
  readonly id: string
  readonly root: string
  readonly appScript: string
}

/** `worktree` (the files as they are now) or any commit-ish (`HEAD`, a sha): extracted once, then reused. */
export async function codeVersion(ref: string): Promise<CodeVersion> {
  if (ref === 'worktree') return { id: 'worktree', root: ROOT, appScript: path.join(ROOT, 'test/eos/app.ts') }
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim()
  const root = path.join(ROOT, '.cache/chaos/code', sha)
  if (!existsSync(path.join(root, 'examples'))) {
    const tmp = `${root}.tmp-${process.pid}`
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { recursive: true })
    const tar = execFileSync('git', ['archive', '--format=tar', sha, 'lib', 'topology', 'examples', 'package.json', 'tsconfig.json'], {
      cwd: ROOT,
      maxBuffer: 256 * 1024 * 1024,
    })
    execFileSync('tar', ['-x', '-C', tmp], { input: tar })
    await symlink(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'))
    await rm(root, { recursive: true, force: true })
    await rename(tmp, root)
  }
  await cp(path.join(ROOT, 'test/eos'), path.join(root, 'test/eos'), { recursive: true })
  await cp(path.join(ROOT, 'test/chaos/apps'), path.join(root, 'test/chaos/apps'), { recursive: true })
  return { id: sha, root, appScript: path.join(root, 'test/eos/app.ts') }
}
