"""The WeChat Official Account (服务号) channel: the message callback, the customer-service
and template message APIs, over the same dialogs as every other channel.

A person is their OpenID: ``Incoming.sender.external_id`` and ``chat_id`` both.
"""

CHANNEL = "wechat"
