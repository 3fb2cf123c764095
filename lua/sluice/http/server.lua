return require "sluice.http.server_core"
