#!/usr/bin/env bash
# The perf job's kept runs live on a data branch of the repository itself (default `perf-data`): baselines must
# outlive an artifact's retention and a cache's eviction, every kept run is one commit (the history across
# commits), and pull requests read it with the checkout's own credentials.
#
#   ci/data-branch.sh fetch DIR [BRANCH]            check the branch out into DIR (empty when it does not exist yet)
#   ci/data-branch.sh publish DIR MESSAGE [BRANCH]  commit DIR's changes to the branch and push them, rebasing onto
#                                                   a push that landed meanwhile (each machine kind has its folder)
#
# A kind's `artifacts/` (the files its baseline timed, hundreds of MB) never goes into git, where every kept
# baseline's files would stay in the history forever: the workflow keeps the newest baseline's in a cache.
set -euo pipefail
command=${1:?usage: data-branch.sh fetch DIR [BRANCH] | publish DIR MESSAGE [BRANCH]}
dir=${2:?the data folder}
case "$command" in
  fetch)
    branch=${3:-perf-data}
    if git ls-remote --exit-code --heads origin "$branch" >/dev/null; then
      git fetch -q origin "+refs/heads/$branch:refs/remotes/origin/$branch"
      git worktree add -q -B "$branch" "$dir" "origin/$branch"
    else
      git worktree add -q --detach "$dir"
      git -C "$dir" switch -q --orphan "$branch"
      echo "no branch $branch on origin yet: $dir starts empty"
    fi
    ;;
  publish)
    message=${3:?a commit message}
    branch=${4:-perf-data}
    cd "$dir"
    git add -A -- . ':(exclude)*/artifacts/*'
    if git diff --cached --quiet; then
      echo "nothing to keep in $dir"
      exit 0
    fi
    git -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
      commit -q -m "$message"
    for attempt in 1 2 3 4 5; do
      if git push -q origin "HEAD:refs/heads/$branch"; then
        echo "kept on $branch: $(git rev-parse --short HEAD)"
        exit 0
      fi
      sleep $((attempt * 3))
      git fetch -q origin "+refs/heads/$branch:refs/remotes/origin/$branch"
      git rebase -q "origin/$branch"
    done
    echo "could not push to $branch after 5 attempts" >&2
    exit 1
    ;;
  *)
    echo "data-branch.sh: unknown command '$command' (fetch, publish)" >&2
    exit 2
    ;;
esac
