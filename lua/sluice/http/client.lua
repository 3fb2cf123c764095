return require "sluice.http.client_core"
