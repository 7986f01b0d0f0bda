# pragma version ~=0.4.3
"""
@title VoxPersona persona registry
@notice Anchors voice personas (embedding + metadata hashes, creator), takes callers' crypto top-ups
        (`deposit`, credited off chain to the account its reference names) and pays creators their
        settled earnings by pull payment. Persona and settlement ids are keccak256 of the
        platform's string ids (see bentos/chain/ids.py).
"""

# Bounded so a settlement always fits a block; 100 creators cost ~2.5M gas.
MAX_PAYOUTS: constant(uint256) = 256


struct Persona:
    creator: address
    embedding_hash: bytes32
    metadata_hash: bytes32
    registered_at: uint256
    revoked_at: uint256


struct Settlement:
    usage_digest: bytes32
    total: uint256


event PersonaRegistered:
    persona_id: indexed(bytes32)
    creator: indexed(address)
    embedding_hash: bytes32
    metadata_hash: bytes32


event PersonaRevoked:
    persona_id: indexed(bytes32)
    revoked_by: indexed(address)


event PersonaMetadataUpdated:
    persona_id: indexed(bytes32)
    metadata_hash: bytes32


event SettlementDeposited:
    settlement_id: indexed(bytes32)
    usage_digest: bytes32
    total: uint256
    creator_count: uint256


event CreatorCredited:
    settlement_id: indexed(bytes32)
    creator: indexed(address)
    amount: uint256


event Withdrawn:
    creator: indexed(address)
    amount: uint256


event Deposited:
    sender: indexed(address)
    reference: indexed(bytes32)
    value: uint256


event Swept:
    to: indexed(address)
    amount: uint256


platform: public(address)
# Sum of all creator balances: the contract's ether never drops below it.
total_owed: public(uint256)
balance_of: public(HashMap[address, uint256])
# Top-ups received; they belong to the platform (sweep), never to the creators' balances.
total_deposited: public(uint256)

_personas: HashMap[bytes32, Persona]
_settlements: HashMap[bytes32, Settlement]


@deploy
def __init__():
    self.platform = msg.sender


@external
def register(persona_id: bytes32, embedding_hash: bytes32, metadata_hash: bytes32, creator: address):
    assert msg.sender == self.platform, "only platform"
    assert persona_id != empty(bytes32), "empty persona id"
    assert embedding_hash != empty(bytes32), "empty embedding hash"
    assert creator != empty(address), "zero creator"
    # registered_at is never 0 after registration, so it doubles as the existence flag.
    assert self._personas[persona_id].registered_at == 0, "persona already registered"
    self._personas[persona_id] = Persona(
        creator=creator,
        embedding_hash=embedding_hash,
        metadata_hash=metadata_hash,
        registered_at=block.timestamp,
        revoked_at=0,
    )
    log PersonaRegistered(
        persona_id=persona_id, creator=creator, embedding_hash=embedding_hash, metadata_hash=metadata_hash
    )


@external
def update_metadata(persona_id: bytes32, metadata_hash: bytes32):
    # The creator edited what the metadata hash covers (e.g. the name): the record follows the edit.
    assert msg.sender == self.platform, "only platform"
    record: Persona = self._personas[persona_id]
    assert record.registered_at != 0, "persona not registered"
    assert record.revoked_at == 0, "persona already revoked"
    self._personas[persona_id].metadata_hash = metadata_hash
    log PersonaMetadataUpdated(persona_id=persona_id, metadata_hash=metadata_hash)


@external
def revoke(persona_id: bytes32):
    record: Persona = self._personas[persona_id]
    assert record.registered_at != 0, "persona not registered"
    assert msg.sender == record.creator or msg.sender == self.platform, "only creator or platform"
    assert record.revoked_at == 0, "persona already revoked"
    self._personas[persona_id].revoked_at = block.timestamp
    log PersonaRevoked(persona_id=persona_id, revoked_by=msg.sender)


@external
@payable
def deposit_settlement(
    settlement_id: bytes32,
    usage_digest: bytes32,
    creators: DynArray[address, MAX_PAYOUTS],
    amounts: DynArray[uint256, MAX_PAYOUTS],
):
    assert msg.sender == self.platform, "only platform"
    assert settlement_id != empty(bytes32), "empty settlement id"
    # A non-empty digest marks the settlement as taken, so it must never be zero.
    assert usage_digest != empty(bytes32), "empty usage digest"
    assert self._settlements[settlement_id].usage_digest == empty(bytes32), "settlement already deposited"
    assert len(creators) == len(amounts), "creators and amounts differ in length"
    assert len(creators) > 0, "no payouts"
    total: uint256 = 0
    for i: uint256 in range(len(creators), bound=MAX_PAYOUTS):
        creator: address = creators[i]
        amount: uint256 = amounts[i]
        assert creator != empty(address), "zero creator"
        assert amount > 0, "zero amount"
        self.balance_of[creator] += amount
        total += amount
        log CreatorCredited(settlement_id=settlement_id, creator=creator, amount=amount)
    assert msg.value == total, "value does not match payouts"
    self.total_owed += total
    self._settlements[settlement_id] = Settlement(usage_digest=usage_digest, total=total)
    log SettlementDeposited(
        settlement_id=settlement_id, usage_digest=usage_digest, total=total, creator_count=len(creators)
    )


@external
@payable
def deposit(reference: bytes32):
    # The platform credits `reference`'s account off chain after enough confirmations, once per log.
    assert msg.value > 0, "zero deposit"
    assert reference != empty(bytes32), "empty reference"
    self.total_deposited += msg.value
    log Deposited(sender=msg.sender, reference=reference, value=msg.value)


@external
@nonreentrant
def sweep(to: address, amount: uint256):
    # Moves top-up money out; what creators are owed always stays in the contract.
    assert msg.sender == self.platform, "only platform"
    assert to != empty(address), "zero recipient"
    assert amount + self.total_owed <= self.balance, "would touch creator balances"
    raw_call(to, b"", value=amount)
    log Swept(to=to, amount=amount)


@external
@nonreentrant
def withdraw() -> uint256:
    amount: uint256 = self.balance_of[msg.sender]
    assert amount > 0, "nothing to withdraw"
    # Effects before the call; raw_call forwards all gas so a contract creator can receive,
    # and a failing receiver only blocks its own withdrawal.
    self.balance_of[msg.sender] = 0
    self.total_owed -= amount
    raw_call(msg.sender, b"", value=amount)
    log Withdrawn(creator=msg.sender, amount=amount)
    return amount


@view
@external
def persona(persona_id: bytes32) -> Persona:
    return self._personas[persona_id]


@view
@external
def is_revoked(persona_id: bytes32) -> bool:
    return self._personas[persona_id].revoked_at != 0


@view
@external
def settlement(settlement_id: bytes32) -> Settlement:
    return self._settlements[settlement_id]
