# bash completion for peerctl and trackerctl, installed under both names in
# /usr/share/bash-completion/completions/. Subcommands and options are read
# from the tool's own --help, so they never drift from the program; names and
# hosts are asked of the running daemon (quietly; nothing when it is down).

# The long and short options a --help lists.
_peershare_options() {
    "$@" --help 2>/dev/null | sed -n 's/^  \(-[^ ]*\).*/\1/p' | tr ',' '\n' | sed 's/=.*//'
}

# The subcommands a --help lists.
_peershare_subcommands() {
    "$@" --help 2>/dev/null | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# The values of a JSON field in a tool's --json output (names have no quotes
# or backslashes in practice; anything odd is skipped, not mangled).
_peershare_json_field() {
    local field=$1
    shift
    "$@" --json 2>/dev/null | grep -o "\"$field\": *\"[^\"\\\\]*\"" | sed 's/.*: *"\(.*\)"/\1/' | sort -u
}

_peershare_ctl() {
    local cur prev words cword
    _init_completion || return
    local tool=${words[0]} sub="" i
    local -a socket=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --socket) socket=(--socket "${words[i + 1]}"); ((i++)) ;;
            --socket=*) socket=("${words[i]}") ;;
            -*) ;;
            *) [[ -z $sub ]] && sub=${words[i]} ;;
        esac
    done

    case $prev in
        --socket | -o | --output) _filedir; return ;;
        --from | --id | --timeout) return ;;
        --up | --down) COMPREPLY=($(compgen -W "0 500k 1M 5M 20M 1G 20Mbit 100Mbit" -- "$cur")); return ;;
    esac

    if [[ $cur == -* ]]; then
        local opts
        opts=$({ _peershare_options "$tool"; [[ -n $sub ]] && _peershare_options "$tool" "$sub"; } | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "$(_peershare_subcommands "$tool")" -- "$cur"))
        return
    fi
    case "${tool##*/} $sub" in
        "peerctl publish") _filedir ;;
        "peerctl unpublish") COMPREPLY=($(compgen -W "$(_peershare_json_field name "$tool" "${socket[@]}" list)" -- "$cur")) ;;
        "peerctl fetch") COMPREPLY=($(compgen -W "$(_peershare_json_field name "$tool" "${socket[@]}" search)" -- "$cur")) ;;
        "trackerctl discover" | "trackerctl ping")
            COMPREPLY=($(compgen -W "$(_peershare_json_field name "$tool" "${socket[@]}" peers)" -- "$cur")) ;;
    esac
}
complete -F _peershare_ctl peerctl trackerctl
